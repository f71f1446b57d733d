"""Preset folders: save, find, download, verify, load and publish.

A preset is either a registry name (an untrained recipe: architecture,
training and data settings; see `keras_ssm.models.list_presets()`) or a
folder with trained weights, in keras-hub's layout:

- `config.json`: the backbone, serialized (`keras.saving`);
- `model.weights.h5`: the backbone's weights;
- `task.json`: the task model, serialized, its backbone's config included;
- `task.weights.h5`: the weights of the task's own layers (the head);
- `metadata.json`: the keras-ssm and Keras versions, the backend it was
  saved under, the parameter count and the SHA-256 of every file;
- `assets/`: what the model needs besides weights (a forecaster's scaler).

A model without a separate backbone (the forecasting baselines) writes its
whole self to `config.json`, `task.json` and `model.weights.h5`.

A folder may be local, on the Hugging Face Hub (`"hf://owner/name"`, with
`huggingface_hub`) or on Kaggle Models (`"kaggle://owner/model/keras/variant"`,
with `kagglehub`).

Task classes take part through `PresetMixin`: they inherit
`from_preset(preset, **overrides)` and `save_to_preset(folder)`, and may
define `_link_overrides` (an override that implies another) and
`_preset_assets` / `_load_preset_assets` (files beside the weights).
"""

import datetime
import hashlib
import importlib
import inspect
import json
import os
import shutil
import tempfile

import keras

CONFIG_FILE = "config.json"
TASK_CONFIG_FILE = "task.json"
MODEL_WEIGHTS_FILE = "model.weights.h5"
TASK_WEIGHTS_FILE = "task.weights.h5"
METADATA_FILE = "metadata.json"
ASSETS_DIR = "assets"
HF_SCHEME = "hf://"
KAGGLE_SCHEME = "kaggle://"


# === Overrides ===


def init_arguments(cls):
    """The keyword arguments of `cls.__init__`, in order (no `**kwargs`)."""
    kinds = (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
    parameters = inspect.signature(cls.__init__).parameters.values()
    return tuple(
        p.name for p in parameters if p.kind in kinds and p.name != "self"
    )


def route_overrides(overrides, task_cls=None, backbone_cls=None):
    """Splits `from_preset` overrides between the backbone and the task.

    An argument of both goes to the backbone. Deprecated argument names
    (see `keras_ssm.utils.deprecation`) are accepted, with a warning, and
    come back under their current names; a name the backbone takes is
    the backbone's (`hidden_dim`, the model width, even where it is the
    deprecated name of a task argument).

    Args:
        overrides: dict of argument names to values (None is a value).
        task_cls: the task class, or None when loading a backbone.
        backbone_cls: the backbone class, or None for a model without one.

    Returns:
        `(backbone_overrides, task_overrides)`.

    Raises:
        ValueError: naming each unknown argument and listing those
            accepted, or an argument given under its old and new names.
    """
    from keras_ssm.utils.deprecation import renamed_arguments

    backbone_args = init_arguments(backbone_cls) if backbone_cls else ()
    backbone_renames = renamed_arguments(backbone_cls) if backbone_cls else {}
    task_args, task_renames = (), {}
    if task_cls is not None:
        task_args = tuple(
            name
            for name in init_arguments(task_cls)
            if name != "backbone" and name not in backbone_args
        )
        task_renames = {
            old: new
            for old, new in renamed_arguments(task_cls).items()
            if old not in backbone_args and new in task_args
        }
    known = set(backbone_args) | set(backbone_renames)
    known |= set(task_args) | set(task_renames)
    unknown = sorted(set(overrides) - known)
    if unknown:
        owner = (task_cls or backbone_cls).__name__
        accepted = []
        if backbone_args:
            accepted.append(
                f"backbone arguments ({backbone_cls.__name__}): "
                f"{', '.join(backbone_args)}"
            )
        if task_args:
            accepted.append(
                f"{task_cls.__name__} arguments: {', '.join(task_args)}"
            )
        raise ValueError(
            f"{owner}.from_preset got unknown override(s) {unknown}. It "
            f"accepts {'; '.join(accepted)}."
        )
    backbone_names = set(backbone_args) | set(backbone_renames)
    backbone = {k: v for k, v in overrides.items() if k in backbone_names}
    task = {k: v for k, v in overrides.items() if k not in backbone}
    if backbone_cls is not None:
        backbone = upgrade_config(backbone_cls, backbone, "from_preset")
    if task_cls is not None:
        task = upgrade_config(task_cls, task, "from_preset")
    return backbone, task


def upgrade_config(cls, config, where=None):
    """`config` of `cls` with its deprecated argument names renamed.

    Args:
        cls: the class the arguments are for.
        config: dict of arguments (left unchanged).
        where: how the warning names the source (e.g. `"from_preset"`);
            default the class alone.

    Returns:
        A new dict under the current names (a warning for each old one).
    """
    from keras_ssm.utils.deprecation import rename_arguments
    from keras_ssm.utils.deprecation import renamed_arguments

    owner = cls.__name__ if where is None else f"{cls.__name__}.{where}"
    return rename_arguments(config, renamed_arguments(cls), owner, stacklevel=3)


def scale_backbone(config, overrides):
    """`config` updated with `overrides`; inner widths follow `hidden_dim`.

    Unlike `keras_ssm.models.recipes.scale_backbone_config`, a None
    override is a value (e.g. `sequence_length=None`: any length).
    """
    from keras_ssm.models.recipes import scale_backbone_config

    given = {k: v for k, v in overrides.items() if v is not None}
    config = scale_backbone_config(config, **given)
    config.update({k: v for k, v in overrides.items() if v is None})
    return config


# === Where a preset is ===


def is_remote(preset):
    return isinstance(preset, str) and preset.startswith(
        (HF_SCHEME, KAGGLE_SCHEME)
    )


def is_folder_preset(preset):
    """True for a URI or an existing folder (not a registry name)."""
    if isinstance(preset, os.PathLike):
        return True
    if not isinstance(preset, str):
        return False
    from keras_ssm import presets as registry

    if preset in registry.list_presets():
        return False
    return is_remote(preset) or os.path.sep in preset or os.path.isdir(preset)


def hf_repo_id(uri):
    """`(repo_id, revision)` of `"hf://owner/name"` or `"hf://owner/name@rev"`.

    `revision` is None when the URI names none.
    """
    repo_id, _, revision = uri[len(HF_SCHEME) :].strip("/").partition("@")
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(
            "A Hugging Face preset is 'hf://owner/name' (optionally "
            f"'@revision'); got {uri!r}."
        )
    return repo_id, revision or None


def kaggle_handle(uri, lengths, form):
    """The Kaggle handle of `"kaggle://..."`, of `lengths` parts (`form`)."""
    handle = uri[len(KAGGLE_SCHEME) :].strip("/")
    if len(handle.split("/")) not in lengths:
        raise ValueError(f"A Kaggle preset is {form}; got {uri!r}.")
    return handle


def import_client(module, action, install=None):
    """The optional library `module`; a missing one names what needs it.

    `install` is what to `pip install` (default `module`).
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{action} needs {module}: pip install {install or module}."
        ) from error


def download(uri):
    """The local folder of an `hf://` or `kaggle://` preset (downloaded).

    Raises:
        ImportError: when the hub's client library is missing.
        ValueError: for a malformed URI.
    """
    if uri.startswith(HF_SCHEME):
        repo_id, revision = hf_repo_id(uri)
        hub = import_client("huggingface_hub", f"Loading {uri!r}")
        revision = {"revision": revision} if revision else {}
        return hub.snapshot_download(repo_id=repo_id, **revision)
    if uri.startswith(KAGGLE_SCHEME):
        handle = kaggle_handle(
            uri,
            (4, 5),
            "'kaggle://owner/model/framework/variant' (optionally '/version')",
        )
        kagglehub = import_client("kagglehub", f"Loading {uri!r}")
        return kagglehub.model_download(handle)
    raise ValueError(
        f"A preset URI starts with {HF_SCHEME!r} or {KAGGLE_SCHEME!r}; got "
        f"{uri!r}."
    )


def local_folder(preset):
    """The local folder of a preset folder or URI; checks that it is one."""
    folder = download(preset) if is_remote(preset) else os.fspath(preset)
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise ValueError(
                f"`preset` {folder!r} is a file; a preset is a registry name "
                "or a folder written by `save_to_preset`."
            )
        raise FileNotFoundError(
            f"`preset` {folder!r} is neither a registry name (see "
            "keras_ssm.models.list_presets()) nor an existing folder."
        )
    if not os.path.isfile(os.path.join(folder, CONFIG_FILE)):
        raise ValueError(
            f"The folder {folder!r} is not a preset: it has no {CONFIG_FILE} "
            "(write one with `model.save_to_preset(folder)`)."
        )
    return folder


# === Files ===


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(folder, name):
    path = os.path.join(folder, name)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"The preset folder {folder!r} has no {name}."
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); the preset folder is "
            "corrupted: save or download it again."
        ) from None


def _write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def verify_folder(folder):
    """Checks every file against the SHA-256 sums in `metadata.json`.

    Raises:
        ValueError: naming a missing or corrupted file.
    """
    metadata = read_json(folder, METADATA_FILE)
    for name, expected in sorted(metadata.get("files", {}).items()):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise ValueError(
                f"{path} is missing from the preset folder (metadata.json "
                "lists it): download or save the preset again."
            )
        if sha256(path) != expected:
            raise ValueError(
                f"{path} is corrupted: its SHA-256 differs from the one in "
                "metadata.json. Download or save the preset again."
            )
    return metadata


def load_weights_file(model, path, **kwargs):
    """`keras.saving.load_weights`, with an error naming a bad file."""
    try:
        keras.saving.load_weights(model, path, **kwargs)
    except FileNotFoundError:
        raise
    except Exception as error:  # h5py, Keras: the message names no file
        raise ValueError(
            f"Could not load the weights file {path}: it is corrupted or was "
            f"saved from another architecture ({type(error).__name__}: "
            f"{str(error).strip().splitlines()[0] if str(error) else ''}). "
            "Save it again from the same model."
        ) from None


def _serialize(obj):
    config = keras.saving.serialize_keras_object(obj)

    def strip(value):
        if isinstance(value, dict):
            for key in ("compile_config", "build_config"):
                value.pop(key, None)
            for item in value.values():
                strip(item)

    strip(config)
    return config


def _replace_folder(tmp, folder):
    """Moves the finished `tmp` folder to `folder`, replacing it.

    An existing folder is first renamed aside and removed after, so that at
    every moment either the old or the new folder is complete on disk.
    """
    if not os.path.lexists(folder):
        os.replace(tmp, folder)
        return
    if not os.path.isdir(folder) or os.path.islink(folder):
        raise ValueError(
            f"Cannot save a preset to {folder!r}: it exists and is not a "
            "folder."
        )
    aside = tempfile.mkdtemp(
        prefix=f".{os.path.basename(folder)}.old-",
        dir=os.path.dirname(folder),
    )
    os.replace(folder, os.path.join(aside, "old"))
    os.replace(tmp, folder)
    shutil.rmtree(aside, ignore_errors=True)


def save_preset(folder, model, backbone=None, assets=None):
    """Writes `model` as a preset folder, atomically as a whole.

    Args:
        folder: the folder to write (replaced if it exists).
        model: the task model (or the backbone itself).
        backbone: the model's backbone, or None for a model without one.
        assets: dict of file names to JSON-serializable values, written
            under `assets/`.

    Returns:
        The folder's path.
    """
    from keras_ssm import __version__

    folder = os.path.abspath(os.fspath(folder))
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.", dir=parent)
    try:
        head = model if backbone is None else backbone
        _write_json(os.path.join(tmp, CONFIG_FILE), _serialize(head))
        head.save_weights(os.path.join(tmp, MODEL_WEIGHTS_FILE))
        if model is not head:
            _write_json(os.path.join(tmp, TASK_CONFIG_FILE), _serialize(model))
            backbone_ids = {id(w) for w in backbone.weights}
            if any(id(w) not in backbone_ids for w in model.weights):
                keras.saving.save_weights(
                    model,
                    os.path.join(tmp, TASK_WEIGHTS_FILE),
                    objects_to_skip=list(backbone._flatten_layers()),
                )
        elif backbone is None and not isinstance(model, _backbone_types()):
            _write_json(os.path.join(tmp, TASK_CONFIG_FILE), _serialize(model))
        for name, value in sorted((assets or {}).items()):
            os.makedirs(os.path.join(tmp, ASSETS_DIR), exist_ok=True)
            _write_json(os.path.join(tmp, ASSETS_DIR, name), value)
        files = {}
        for root, _, names in os.walk(tmp):
            for name in names:
                path = os.path.join(root, name)
                files[os.path.relpath(path, tmp).replace(os.sep, "/")] = sha256(
                    path
                )
        _write_json(
            os.path.join(tmp, METADATA_FILE),
            {
                "keras_ssm_version": __version__,
                "keras_version": keras.version(),
                "backend": keras.backend.backend(),
                "class_name": type(model).__name__,
                "parameter_count": int(model.count_params()),
                "date_saved": datetime.datetime.now(
                    datetime.timezone.utc
                ).strftime("%Y-%m-%d@%H:%M:%S"),
                "files": files,
            },
        )
        _replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _backbone_types():
    from keras_ssm.models.backbone import SSMBackbone

    return (SSMBackbone,)


def _registered_class(config, path):
    import keras_ssm.models  # noqa: F401  (registers the classes)

    name = config.get("registered_name") if isinstance(config, dict) else None
    cls = keras.saving.get_registered_object(name) if name else None
    if cls is None:
        raise ValueError(
            f"{path} names the class {name!r}, which is not registered with "
            "Keras (is the package that defines it imported?)."
        )
    return cls


def load_preset(cls, preset, overrides, load_weights=True):
    """Builds `cls` from a preset folder or URI and loads its weights.

    Args:
        cls: the class to load (`SSMBackbone`, a task class, or
            `keras.Model` for whatever the folder holds).
        preset: a local folder, `hf://...` or `kaggle://...`.
        overrides: dict of arguments replacing the saved ones (an
            architecture change makes the weights fail to load, with an
            error naming the file).
        load_weights: False builds the saved architecture untrained.

    Returns:
        The model; a task's assets are loaded by its
        `_load_preset_assets(folder)`.
    """
    folder = local_folder(preset)
    verify_folder(folder)
    want_backbone = issubclass(cls, _backbone_types())
    name = CONFIG_FILE
    if not want_backbone and os.path.isfile(
        os.path.join(folder, TASK_CONFIG_FILE)
    ):
        name = TASK_CONFIG_FILE
    config = read_json(folder, name)
    found = _registered_class(config, os.path.join(folder, name))
    if not issubclass(found, cls):
        hint = ""
        if want_backbone:
            hint = " (a model without an SSMBackbone)"
        raise ValueError(
            f"The preset folder {folder!r} holds a {found.__name__}{hint}; "
            f"load it with {found.__name__}.from_preset, or "
            "keras_ssm.models.from_preset."
        )
    nested = config["config"].get("backbone")
    if isinstance(nested, dict) and "config" in nested:
        backbone_cls = _registered_class(nested, os.path.join(folder, name))
        task_cls = found
        backbone_config = nested["config"]
    elif issubclass(found, _backbone_types()):
        backbone_cls, task_cls, backbone_config = found, None, config["config"]
    else:
        backbone_cls, task_cls, backbone_config = None, found, None
    backbone_over, task_over = route_overrides(
        overrides, task_cls, backbone_cls
    )
    task_config = config["config"] if task_cls is not None else None
    if task_cls is not None and hasattr(task_cls, "_link_overrides"):
        task_cls._link_overrides(
            task_config, backbone_config, task_over, backbone_over
        )
    # A folder saved by an earlier version may use deprecated names: they
    # are renamed first, so that an override under the new name replaces
    # them.
    if backbone_config is not None:
        scaled = scale_backbone(
            upgrade_config(backbone_cls, backbone_config), backbone_over
        )
        backbone_config.clear()
        backbone_config.update(scaled)
    if task_config is not None:
        upgraded = upgrade_config(task_cls, task_config)
        task_config.clear()
        task_config.update(upgraded, **task_over)
    model = keras.saving.deserialize_keras_object(config)
    if load_weights:
        backbone = getattr(model, "backbone", None)
        task_weights = os.path.join(folder, TASK_WEIGHTS_FILE)
        if name == TASK_CONFIG_FILE and backbone is not None:
            if os.path.isfile(task_weights):
                load_weights_file(
                    model,
                    task_weights,
                    objects_to_skip=list(backbone._flatten_layers()),
                )
            load_weights_file(
                backbone, os.path.join(folder, MODEL_WEIGHTS_FILE)
            )
        else:
            load_weights_file(model, os.path.join(folder, MODEL_WEIGHTS_FILE))
    if hasattr(model, "_load_preset_assets"):
        model._load_preset_assets(folder)
    return model


def from_registry(cls, preset, overrides):
    """Builds `cls` (untrained) from a registry entry, with overrides."""
    from keras_ssm import presets as registry

    entry = registry.get_preset(preset)
    class_name = entry["model"]["class"]
    task_cls = keras.saving.get_registered_object(f"keras_ssm>{class_name}")
    config = entry["model"]["config"]
    backbone_config = config.get("backbone")
    backbone_types = _backbone_types()
    if issubclass(cls, backbone_types):
        if backbone_config is None:
            raise ValueError(
                f"Preset {preset!r} is a {class_name} preset, which has no "
                f"SSMBackbone; load it with keras_ssm.models.{class_name}"
                ".from_preset."
            )
        backbone_over, _ = route_overrides(overrides, None, cls)
        return cls(**scale_backbone(backbone_config, backbone_over))
    if task_cls is None or not issubclass(task_cls, cls):
        raise ValueError(
            f"Preset {preset!r} is a {class_name} preset; load it with "
            f"keras_ssm.models.{class_name}.from_preset."
        )
    backbone_cls = backbone_types[0] if backbone_config is not None else None
    backbone_over, task_over = route_overrides(
        overrides, task_cls, backbone_cls
    )
    if hasattr(task_cls, "_link_overrides"):
        task_cls._link_overrides(
            config, backbone_config, task_over, backbone_over
        )
    if backbone_config is not None:
        config["backbone"] = backbone_cls(
            **scale_backbone(backbone_config, backbone_over)
        )
    config.update(task_over)
    return task_cls(**config)


def from_preset(cls, preset, weights=None, load_weights=True, **overrides):
    """`cls` from a registry name (untrained) or a preset folder (trained).

    See `PresetMixin.from_preset`.
    """
    if is_folder_preset(preset):
        if weights is not None:
            raise ValueError(
                "`weights` is for registry names; the preset folder "
                f"{os.fspath(preset)!r} carries its own weights."
            )
        return load_preset(cls, preset, overrides, load_weights=load_weights)
    model = from_registry(cls, preset, overrides)
    if weights is not None:
        load_weights_file(model, os.fspath(weights))
    return model


def upload_preset(uri, folder):
    """Publishes a preset folder to the Hugging Face Hub or Kaggle Models.

    The folder is checked first (its files against `metadata.json`).

    Args:
        uri: `"hf://owner/name"` (uploads with `huggingface_hub`, creating
            the repository if needed; log in with `huggingface-cli login`)
            or `"kaggle://owner/model/keras/variant"` (with `kagglehub`).
        folder: a folder written by `save_to_preset`.

    Example:

    ```python
    model.save_to_preset("my_forecaster")
    keras_ssm.models.upload_preset("hf://me/my_forecaster", "my_forecaster")
    ```
    """
    folder = local_folder(os.fspath(folder))
    verify_folder(folder)
    if not isinstance(uri, str):
        raise TypeError(f"`uri` must be a string, got {type(uri).__name__}.")
    if uri.startswith(HF_SCHEME):
        repo_id, _ = hf_repo_id(uri)
        hub = import_client(
            "huggingface_hub", "Uploading to the Hugging Face Hub"
        )
        hub.create_repo(repo_id=repo_id, exist_ok=True)
        hub.upload_folder(repo_id=repo_id, folder_path=folder)
    elif uri.startswith(KAGGLE_SCHEME):
        handle = kaggle_handle(
            uri, (4,), "'kaggle://owner/model/framework/variant' to upload"
        )
        kagglehub = import_client("kagglehub", "Uploading to Kaggle")
        kagglehub.model_upload(handle, folder)
    else:
        raise ValueError(
            f"`uri` must start with {HF_SCHEME!r} or {KAGGLE_SCHEME!r}; got "
            f"{uri!r}."
        )


class PresetMixin:
    """`from_preset` and `save_to_preset` of the backbone and task models.

    A subclass may define:

    - `_preset_backbone()`: its backbone (default: `self.backbone`, or
      None);
    - `_link_overrides(task_config, backbone_config, task_over,
      backbone_over)` (classmethod): overrides implied by others;
    - `_preset_assets()`: `{file name: JSON value}` to save under
      `assets/`; `_load_preset_assets(folder)`: read them back.
    """

    @classmethod
    def from_preset(cls, preset, weights=None, load_weights=True, **overrides):
        """The model of a preset: a recipe by name, or trained from a folder.

        - A registry name (see `keras_ssm.models.list_presets()`) gives an
          UNTRAINED model of that recipe's architecture (train it with
          `compile_from_preset`); `weights` may name a `.weights.h5` file
          saved with `model.save_weights` from the same architecture.
        - A folder written by `save_to_preset`, local or as
          `"hf://owner/name"` (needs `huggingface_hub`) or
          `"kaggle://owner/model/keras/variant"` (needs `kagglehub`), gives
          the TRAINED model it holds, on any backend. A registry name wins
          over a folder of the same name: write `"./name"` for the folder.

        `SSMBackbone.from_preset` loads the backbone of a task preset.

        Args:
            preset: a registry name, a folder or a URI.
            weights: optional `.weights.h5` path (registry names only).
            load_weights: False builds a folder's architecture untrained.
            **overrides: arguments replacing the preset's, each applied to
                the backbone (`num_layers`, `hidden_dim`,
                `sequence_length`, ...; the intermediate width keeps its
                ratio to `hidden_dim`) or to the task (`num_classes`,
                `horizon`, `input_size`, ...) that takes it. None is a
                value (`sequence_length=None`: any length). An unknown
                argument raises a ValueError listing those accepted.

        Returns:
            The model, uncompiled.

        Example:

        ```python
        model = SSMClassifier.from_preset("s4d_listops_cpu", num_classes=3)
        model.save_to_preset("my_classifier")  # after training
        trained = SSMClassifier.from_preset("my_classifier")
        ```
        """
        return from_preset(
            cls, preset, weights=weights, load_weights=load_weights, **overrides
        )

    def _preset_backbone(self):
        return getattr(self, "backbone", None)

    def save_to_preset(self, folder):
        """Saves the model, with trained weights, as a preset folder.

        The folder (keras-hub's layout: `config.json`, `model.weights.h5`,
        `task.json`, `task.weights.h5`, `metadata.json`, `assets/`) loads
        back with `from_preset(folder)` on any backend. It is written to a
        temporary folder and renamed, so an interrupted save leaves the
        previous folder or none.

        Args:
            folder: the folder to write; replaced if it exists.

        Returns:
            The folder's absolute path.
        """
        assets = (
            self._preset_assets() if hasattr(self, "_preset_assets") else {}
        )
        return save_preset(
            folder, self, backbone=self._preset_backbone(), assets=assets
        )
