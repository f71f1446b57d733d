"""`SSMCausalLM` presets: Hugging Face checkpoints and keras-hub-style folders.

`save_to_preset` writes the keras-hub layout: `config.json` (the serialized
backbone), `model.weights.h5`, `task.json`, `preprocessor.json`,
`assets/tokenizer/tokenizer.json` and `metadata.json`. `from_preset` reads
that layout or a Hugging Face checkpoint (its `config.json` names a
`model_type`).
"""

import json
import os

import keras

from keras_ssm.models import hf_checkpoint as hf
from keras_ssm.models.causal_lm_backbone import SSMCausalLMBackbone
from keras_ssm.models.causal_lm_preprocessor import SSMCausalLMPreprocessor
from keras_ssm.models.causal_lm_preprocessor import SSMTokenizer

WEIGHTS_FILE = "model.weights.h5"
TASK_FILE = "task.json"
PREPROCESSOR_FILE = "preprocessor.json"
METADATA_FILE = "metadata.json"
TOKENIZER_ASSETS = os.path.join("assets", "tokenizer")
_DEFAULT = object()


def _write_json(folder, name, data):
    path = os.path.join(folder, name)
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(partial, path)


def save_causal_lm(model, folder):
    """Writes an `SSMCausalLM` preset folder (see the module docstring)."""
    import keras_ssm

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    backbone = model.backbone
    _write_json(
        folder,
        hf.CONFIG_FILE,
        keras.saving.serialize_keras_object(backbone),
    )
    # save_weights wants the suffix: the partial file keeps it.
    partial = os.path.join(folder, "partial." + WEIGHTS_FILE)
    backbone.save_weights(partial)
    os.replace(partial, os.path.join(folder, WEIGHTS_FILE))
    _write_json(
        folder,
        TASK_FILE,
        {"class_name": type(model).__name__, "module": type(model).__module__},
    )
    preprocessor = model.preprocessor
    if preprocessor is not None:
        config = preprocessor.get_config()
        config["tokenizer"].pop("tokenizer_json")
        _write_json(folder, PREPROCESSOR_FILE, config)
        preprocessor.tokenizer.save_assets(
            os.path.join(folder, TOKENIZER_ASSETS)
        )
    elif os.path.exists(os.path.join(folder, PREPROCESSOR_FILE)):
        os.remove(os.path.join(folder, PREPROCESSOR_FILE))
    _write_json(
        folder,
        METADATA_FILE,
        {
            "keras_version": keras.__version__,
            "keras_ssm_version": keras_ssm.__version__,
            "parameter_count": backbone.count_params(),
        },
    )


def _hf_preprocessor(folder, config, sequence_length):
    path = os.path.join(folder, hf.TOKENIZER_FILE)
    if not os.path.exists(path):
        return None
    ids = hf.special_token_ids(folder, config)
    tokenizer = SSMTokenizer.from_file(
        path,
        start_token_id=ids["bos"],
        end_token_id=ids["eos"],
        pad_token_id=ids["pad"],
    )
    return SSMCausalLMPreprocessor(
        tokenizer, sequence_length=sequence_length or 1024
    )


def _keras_preprocessor(folder, sequence_length):
    path = os.path.join(folder, PREPROCESSOR_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    tokenizer_file = os.path.join(folder, TOKENIZER_ASSETS, hf.TOKENIZER_FILE)
    tokenizer = SSMTokenizer.from_file(tokenizer_file, **config["tokenizer"])
    config["tokenizer"] = tokenizer
    if sequence_length is not None:
        config["sequence_length"] = sequence_length
    return SSMCausalLMPreprocessor(**config)


def load_causal_lm(
    cls,
    preset,
    load_weights=True,
    preprocessor=_DEFAULT,
    sequence_length=None,
    **kwargs,
):
    """An `SSMCausalLM` (class `cls`) of a preset folder or checkpoint."""
    folder = hf.resolve_checkpoint(preset)
    config = hf.read_config(folder)
    if hf.is_hf_config(config):
        backbone = SSMCausalLMBackbone(**hf.backbone_config(config))
        if load_weights:
            hf.load_weights(backbone, hf.read_weights(folder))
        if preprocessor is _DEFAULT:
            preprocessor = _hf_preprocessor(folder, config, sequence_length)
    elif config.get("class_name") == SSMCausalLMBackbone.__name__:
        backbone = keras.saving.deserialize_keras_object(config)
        if load_weights:
            backbone.load_weights(os.path.join(folder, WEIGHTS_FILE))
        if preprocessor is _DEFAULT:
            preprocessor = _keras_preprocessor(folder, sequence_length)
    else:
        raise ValueError(
            f"{preset!r} is neither a Hugging Face checkpoint (config.json "
            "with a model_type) nor an SSMCausalLM preset (config.json of "
            "an SSMCausalLMBackbone)."
        )
    return cls(backbone=backbone, preprocessor=preprocessor, **kwargs)
