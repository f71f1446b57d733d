"""Presets: overrides, preset folders, downloads, uploads, across backends."""

import json
import os
import sys
import types

import numpy as np
import pytest

import keras_ssm.models
from keras_ssm.datasets.ett.splits import Standardizer
from keras_ssm.models import InformerForecaster
from keras_ssm.models import SSMBackbone
from keras_ssm.models import SSMClassifier
from keras_ssm.models import SSMForecaster
from keras_ssm.models import TransformerForecaster
from keras_ssm.models import get_preset
from keras_ssm.models import preset_io
from keras_ssm.models import upload_preset
from tests.helpers import to_numpy

SMALL = {"num_layers": 1, "hidden_dim": 8}
TOKENS = np.random.default_rng(0).integers(1, 17, (2, 64)).astype("int32")
SERIES = np.random.default_rng(1).normal(size=(2, 96, 1)).astype("float32")

# === Overrides land where they belong ===

# (class, preset, a task/head override, how to read it back)
TASK_OVERRIDES = [
    (
        SSMClassifier,
        "s4d_listops_cpu",
        {"num_classes": 3},
        lambda m: m.output_shape[-1],
        3,
    ),
    (
        SSMForecaster,
        "s4d_etth1_cpu",
        {"horizon": 48},
        lambda m: m.output_shape[1],
        48,
    ),
    (
        TransformerForecaster,
        "transformer_etth1_cpu",
        {"horizon": 12},
        lambda m: m.output_shape[1],
        12,
    ),
    (
        InformerForecaster,
        "informer_etth1_cpu",
        {"horizon": 12, "label_len": 8},
        lambda m: (m.output_shape[1], m.label_len),
        (12, 8),
    ),
]


@pytest.mark.parametrize(
    "cls, preset, overrides, read, expected",
    TASK_OVERRIDES,
    ids=[case[0].__name__ for case in TASK_OVERRIDES],
)
def test_task_overrides_apply_to_the_task(
    cls, preset, overrides, read, expected
):
    model = cls.from_preset(preset, **SMALL, **overrides)
    assert read(model) == expected
    width = model.backbone.hidden_dim if hasattr(model, "backbone") else None
    assert (width or model.hidden_dim) == 8
    default = cls.from_preset(preset, **SMALL)
    assert read(default) != expected


@pytest.mark.parametrize(
    "cls, preset",
    [
        (SSMClassifier, "s4d_listops_cpu"),
        (SSMForecaster, "s4d_etth1_cpu"),
        (TransformerForecaster, "transformer_etth1_cpu"),
        (InformerForecaster, "informer_etth1_cpu"),
        (SSMBackbone, "s4d_listops_cpu"),
    ],
)
def test_an_unknown_override_is_refused_naming_it(cls, preset):
    with pytest.raises(ValueError, match=r"bogus.*accepts.*num_layers"):
        cls.from_preset(preset, bogus=3)


def test_backbone_from_preset_takes_backbone_arguments_only():
    backbone = SSMBackbone.from_preset("s4d_listops_cpu", **SMALL)
    assert backbone.num_layers == 1 and backbone.hidden_dim == 8
    with pytest.raises(ValueError, match="num_classes"):
        SSMBackbone.from_preset("s4d_listops_cpu", num_classes=3)
    with pytest.raises(ValueError, match="no SSMBackbone"):
        SSMBackbone.from_preset("transformer_etth1_cpu")


@pytest.mark.parametrize(
    "cls, preset",
    [
        (SSMClassifier, "s4d_listops_cpu"),
        (SSMForecaster, "s4d_etth1_cpu"),
        (SSMBackbone, "s4d_listops_cpu"),
    ],
)
def test_sequence_length_none_is_honoured(cls, preset):
    model = cls.from_preset(preset, sequence_length=None, **SMALL)
    backbone = model if cls is SSMBackbone else model.backbone
    assert backbone.sequence_length is None
    if cls is not SSMForecaster:  # the forecaster's window stays fixed
        assert model.inputs[0].shape[1] is None
        fixed = cls.from_preset(preset, **SMALL)
        assert fixed.inputs[0].shape[1] == 64


def test_backbone_refuses_unknown_keywords():
    with pytest.raises(TypeError, match="bogus"):
        SSMBackbone("s4d", 1, 8, vocabulary_size=5, bogus=3)


def test_preset_name_suggestions_ignore_case():
    with pytest.raises(ValueError, match="s4d_listops_cpu"):
        get_preset("S4D_ListOps_CPU")


def test_a_corrupted_weights_file_names_the_file(tmp_path):
    model = SSMClassifier.from_preset("s4d_listops_cpu", **SMALL)
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="model.weights.h5"):
        SSMClassifier.from_preset("s4d_listops_cpu", weights=path, **SMALL)


def test_deprecated_names_work_as_overrides():
    renamed = (
        "`num_inputs` of TransformerForecaster.from_preset is deprecated: "
        "use `input_features`"
    )
    new = TransformerForecaster.from_preset(
        "transformer_etth1_cpu", input_features=2, **SMALL
    )
    with pytest.warns(DeprecationWarning, match=renamed):
        old = TransformerForecaster.from_preset(
            "transformer_etth1_cpu", num_inputs=2, **SMALL
        )
    assert {**old.get_config(), "name": new.name} == new.get_config()
    assert old.input_features == 2 and old.inputs[0].shape[-1] == 2
    with pytest.raises(ValueError, match="both `input_features`.*`num_inputs`"):
        TransformerForecaster.from_preset(
            "transformer_etth1_cpu", input_features=2, num_inputs=2
        )
    # `hidden_dim` is the model width: the backbone's, not the classifier's
    # retrieval head (whose width was called `hidden_dim` before 0.2.0).
    model = SSMClassifier.from_preset(
        "s4d_retrieval_cpu", head_intermediate_dim=4, **SMALL
    )
    assert model.backbone.hidden_dim == 8
    assert model.get_layer("mlp").kernel.shape[-1] == 4


def _rename_saved_keys(folder, new, old):
    """Rewrites a preset folder's configs as an earlier version saved them."""
    for name in ("config.json", "task.json"):
        path = os.path.join(folder, name)
        with open(path) as f:
            config = json.load(f)
        if new in config["config"]:
            config["config"][old] = config["config"].pop(new)
        with open(path, "w") as f:
            json.dump(config, f)
    path = os.path.join(folder, "metadata.json")
    with open(path) as f:
        metadata = json.load(f)
    for name in metadata["files"]:
        metadata["files"][name] = preset_io.sha256(os.path.join(folder, name))
    with open(path, "w") as f:
        json.dump(metadata, f)


@pytest.mark.parametrize(
    "cls, preset, new, old, inputs",
    [
        (
            TransformerForecaster,
            "transformer_etth1_cpu",
            "input_features",
            "num_inputs",
            SERIES,
        ),
        (
            SSMClassifier,
            "s4d_listops_cpu",
            "head_intermediate_dim",
            "hidden_dim",
            TOKENS,
        ),
    ],
)
def test_a_folder_saved_with_old_names_loads_the_same(
    tmp_path, cls, preset, new, old, inputs
):
    model = cls.from_preset(preset, **SMALL)
    folder = model.save_to_preset(tmp_path / "old")
    _rename_saved_keys(folder, new, old)
    assert old in json.load(open(os.path.join(folder, "task.json")))["config"]
    renamed = f"`{old}` of {cls.__name__} is deprecated: use `{new}`"
    with pytest.warns(DeprecationWarning, match=renamed):
        restored = cls.from_preset(folder)
    np.testing.assert_array_equal(
        to_numpy(restored(inputs)), to_numpy(model(inputs))
    )
    assert restored.get_config()[new] == model.get_config()[new]
    # An override under the new name replaces the saved old one.
    with pytest.warns(DeprecationWarning, match=renamed):
        again = cls.from_preset(folder, **{new: getattr(model, new)})
    np.testing.assert_array_equal(
        to_numpy(again(inputs)), to_numpy(model(inputs))
    )


# === Preset folders ===


def _tiny_models():
    classifier = SSMClassifier.from_preset("s4d_listops_cpu", **SMALL)
    forecaster = SSMForecaster.from_preset("s4d_etth1_cpu", **SMALL)
    transformer = TransformerForecaster.from_preset(
        "transformer_etth1_cpu", **SMALL
    )
    informer = InformerForecaster.from_preset("informer_etth1_cpu", **SMALL)
    return [
        (classifier, TOKENS),
        (forecaster, SERIES),
        (transformer, SERIES),
        (informer, SERIES),
        (classifier.backbone, TOKENS),
    ]


def test_every_model_round_trips_through_a_folder(tmp_path):
    for index, (model, inputs) in enumerate(_tiny_models()):
        folder = model.save_to_preset(tmp_path / f"m{index}")
        names = set(os.listdir(folder))
        assert {"config.json", "model.weights.h5", "metadata.json"} <= names
        has_backbone = getattr(model, "backbone", None) is not None
        assert ("task.weights.h5" in names) == has_backbone
        assert ("task.json" in names) == (not isinstance(model, SSMBackbone))
        metadata = json.load(open(os.path.join(folder, "metadata.json")))
        assert metadata["keras_ssm_version"] == keras_ssm.__version__
        assert metadata["parameter_count"] == model.count_params()
        assert metadata["class_name"] == type(model).__name__
        restored = type(model).from_preset(folder)
        assert type(restored) is type(model)
        np.testing.assert_array_equal(
            to_numpy(restored(inputs)), to_numpy(model(inputs))
        )
        generic = keras_ssm.models.from_preset(folder)
        assert type(generic) is type(model)
    # The folders hold nothing but the presets (no temporary folders left).
    assert sorted(os.listdir(tmp_path)) == [f"m{i}" for i in range(5)]


def test_the_backbone_of_a_task_folder_loads_alone(tmp_path):
    model = SSMClassifier.from_preset("s4d_listops_cpu", **SMALL)
    folder = model.save_to_preset(tmp_path / "classifier")
    backbone = SSMBackbone.from_preset(folder)
    np.testing.assert_array_equal(
        to_numpy(backbone(TOKENS)), to_numpy(model.backbone(TOKENS))
    )
    with pytest.raises(ValueError, match="SSMClassifier"):
        SSMForecaster.from_preset(folder)


def test_a_folder_accepts_overrides_that_keep_the_weights(tmp_path):
    model = SSMClassifier.from_preset("s4d_listops_cpu", **SMALL)
    folder = model.save_to_preset(tmp_path / "classifier")
    any_length = SSMClassifier.from_preset(folder, sequence_length=None)
    assert any_length.inputs[0].shape[1] is None
    np.testing.assert_allclose(
        to_numpy(any_length(TOKENS)), to_numpy(model(TOKENS)), atol=1e-6
    )
    with pytest.raises(ValueError, match="task.weights.h5"):
        SSMClassifier.from_preset(folder, num_classes=3)
    with pytest.raises(ValueError, match="bogus"):
        SSMClassifier.from_preset(folder, bogus=1)
    with pytest.raises(ValueError, match="carries its own weights"):
        SSMClassifier.from_preset(folder, weights="x.weights.h5")
    untrained = SSMClassifier.from_preset(folder, load_weights=False)
    assert untrained.count_params() == model.count_params()


def test_the_forecaster_scaler_gives_raw_scale_forecasts(tmp_path):
    model = SSMForecaster.from_preset("s4d_etth1_cpu", **SMALL)
    scaler = Standardizer(mean=[10.0], std=[4.0])
    folder = model.save_to_preset(tmp_path / "forecaster", scaler=scaler)
    assert os.path.isfile(os.path.join(folder, "assets", "scaler.json"))
    restored = SSMForecaster.from_preset(folder)
    np.testing.assert_array_equal(restored.scaler.mean, [10.0])
    raw = 10.0 + 4.0 * SERIES.astype(np.float64)
    expected = to_numpy(model(SERIES)).astype(np.float64) * 4.0 + 10.0
    np.testing.assert_allclose(
        restored.forecast(raw), expected, rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="history"):
        restored.forecast(raw[..., 0])
    unscaled = SSMForecaster.from_preset("s4d_etth1_cpu", **SMALL)
    assert unscaled.scaler is None
    np.testing.assert_allclose(
        unscaled.forecast(SERIES), to_numpy(unscaled(SERIES)), atol=1e-5
    )


def test_a_corrupted_folder_names_the_file(tmp_path):
    model = SSMClassifier.from_preset("s4d_listops_cpu", **SMALL)
    folder = model.save_to_preset(tmp_path / "classifier")
    path = os.path.join(folder, "model.weights.h5")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x10  # one flipped bit
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match=r"model\.weights\.h5 is corrupted"):
        SSMClassifier.from_preset(folder)


def test_not_a_preset_is_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a registry name"):
        SSMClassifier.from_preset(str(tmp_path / "missing" / "folder"))
    with pytest.raises(ValueError, match="no config.json"):
        SSMClassifier.from_preset(str(tmp_path) + os.sep)


def _contents(folder):
    return {
        name: open(os.path.join(folder, name), "rb").read()
        for name in os.listdir(folder)
    }


def test_an_interrupted_save_keeps_the_previous_folder(tmp_path, monkeypatch):
    model = SSMClassifier.from_preset("s4d_listops_cpu", **SMALL)
    folder = model.save_to_preset(tmp_path / "classifier")
    before = {
        n: open(os.path.join(folder, n), "rb").read()
        for n in os.listdir(folder)
    }

    def fail(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(preset_io, "_write_json", fail)
    other = SSMClassifier.from_preset("s4d_listops_cpu", num_layers=2)
    with pytest.raises(KeyboardInterrupt):
        other.save_to_preset(folder)
    after = {
        n: open(os.path.join(folder, n), "rb").read()
        for n in os.listdir(folder)
    }
    assert after == before
    assert os.listdir(tmp_path) == ["classifier"]
    monkeypatch.undo()
    other.save_to_preset(folder)  # replacing a folder works
    assert SSMClassifier.from_preset(folder).backbone.num_layers == 2
    assert os.listdir(tmp_path) == ["classifier"]


# === Hubs (stubbed: no network) ===


def _fake_hubs(monkeypatch, folder):
    calls = []
    hf = types.ModuleType("huggingface_hub")
    hf.snapshot_download = lambda repo_id: (
        calls.append(("hf", repo_id)) or folder
    )
    hf.create_repo = lambda repo_id, exist_ok: calls.append(("create", repo_id))
    hf.upload_folder = lambda repo_id, folder_path: calls.append(
        ("upload", repo_id, folder_path)
    )
    kaggle = types.ModuleType("kagglehub")
    kaggle.model_download = lambda handle: (
        calls.append(("kaggle", handle)) or folder
    )
    kaggle.model_upload = lambda handle, path: calls.append(
        ("kaggle_upload", handle, path)
    )
    monkeypatch.setitem(sys.modules, "huggingface_hub", hf)
    monkeypatch.setitem(sys.modules, "kagglehub", kaggle)
    return calls


def test_hub_uris_download_through_the_hub_clients(tmp_path, monkeypatch):
    model = SSMForecaster.from_preset("s4d_etth1_cpu", **SMALL)
    folder = model.save_to_preset(tmp_path / "forecaster")
    calls = _fake_hubs(monkeypatch, folder)
    from_hf = SSMForecaster.from_preset("hf://someone/forecaster")
    from_kaggle = keras_ssm.models.from_preset(
        "kaggle://someone/forecaster/keras/small/2"
    )
    assert calls == [
        ("hf", "someone/forecaster"),
        ("kaggle", "someone/forecaster/keras/small/2"),
    ]
    for restored in (from_hf, from_kaggle):
        np.testing.assert_array_equal(
            to_numpy(restored(SERIES)), to_numpy(model(SERIES))
        )
    with pytest.raises(ValueError, match="hf://owner/name"):
        SSMForecaster.from_preset("hf://no-owner")
    with pytest.raises(ValueError, match="kaggle://owner/model"):
        SSMForecaster.from_preset("kaggle://a/b")


def test_a_missing_hub_client_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match="huggingface_hub"):
        SSMForecaster.from_preset("hf://someone/forecaster")


def test_upload_preset_publishes_a_checked_folder(tmp_path, monkeypatch):
    model = SSMClassifier.from_preset("s4d_listops_cpu", **SMALL)
    folder = model.save_to_preset(tmp_path / "classifier")
    calls = _fake_hubs(monkeypatch, folder)
    upload_preset("hf://someone/classifier", folder)
    upload_preset("kaggle://someone/classifier/keras/small", folder)
    assert calls == [
        ("create", "someone/classifier"),
        ("upload", "someone/classifier", folder),
        ("kaggle_upload", "someone/classifier/keras/small", folder),
    ]
    with pytest.raises(ValueError, match="uri"):
        upload_preset("s3://bucket/classifier", folder)
    os.remove(os.path.join(folder, "task.weights.h5"))
    with pytest.raises(ValueError, match="task.weights.h5 is missing"):
        upload_preset("hf://someone/classifier", folder)
