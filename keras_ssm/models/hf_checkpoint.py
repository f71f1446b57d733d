"""Mamba and Mamba-2 checkpoints in the Hugging Face layout.

A checkpoint folder holds `config.json` (with `model_type` "mamba",
"falcon_mamba" or "mamba2", the `transformers` configuration), the weights as
`model.safetensors` or as shards listed in `model.safetensors.index.json`,
and optionally `tokenizer.json`. Weights are read with `safetensors.numpy`
(no PyTorch), so that a JAX- or TensorFlow-only installation loads them.
`"hf://owner/name"` is downloaded by `huggingface_hub` into its cache.
"""

import json
import math
import os

import numpy as np

from keras_ssm.models.preset_io import HF_SCHEME
from keras_ssm.models.preset_io import hf_repo_id
from keras_ssm.models.preset_io import import_client

SUPPORTED_MODEL_TYPES = ("mamba", "mamba2", "falcon_mamba")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILE = "tokenizer.json"
# What a download fetches: the configuration, safetensors weights and the
# tokenizer, never the PyTorch `.bin` copies some repositories also hold.
DOWNLOAD_PATTERNS = (
    "config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
)


def _requires(module):
    return import_client(
        module, "Loading Hugging Face checkpoints", install="keras-ssm[hf]"
    )


def resolve_checkpoint(path):
    """A local folder for `path`: itself, or an `hf://` repository's download.

    Args:
        path: a folder in the Hugging Face layout, or `"hf://owner/name"`
            (a revision may follow an `@`: `"hf://owner/name@main"`).

    Returns:
        The path of the folder holding `config.json`.
    """
    if isinstance(path, str) and path.startswith(HF_SCHEME):
        repo_id, revision = hf_repo_id(path)
        hub = _requires("huggingface_hub")
        return hub.snapshot_download(
            repo_id, revision=revision, allow_patterns=list(DOWNLOAD_PATTERNS)
        )
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ValueError(
            f"{path!r} is not a folder (a checkpoint folder with "
            "config.json, or 'hf://owner/name')."
        )
    return path


def read_config(folder):
    """The checkpoint's `config.json` as a dict."""
    file = os.path.join(folder, CONFIG_FILE)
    if not os.path.exists(file):
        raise ValueError(f"No {CONFIG_FILE} in {folder!r}.")
    with open(file, encoding="utf-8") as f:
        return json.load(f)


def is_hf_config(config):
    """True for a `transformers` configuration (it names a `model_type`)."""
    return "model_type" in config


def _float(value):
    # transformers writes infinities as {"__float__": "Infinity"}.
    if isinstance(value, dict) and "__float__" in value:
        return float(value["__float__"])
    return float(value)


def _require(config, key):
    if key not in config:
        raise ValueError(
            f"The checkpoint's config.json has no `{key}` (model_type "
            f"{config.get('model_type')!r})."
        )
    return config[key]


def backbone_config(config):
    """`SSMCausalLMBackbone` arguments from a `transformers` configuration.

    Raises:
        ValueError: for a `model_type` other than "mamba", "falcon_mamba"
            and "mamba2" or
            settings these blocks do not compute (a non-SiLU activation,
            LayerNorm instead of RMSNorm).
    """
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"Unsupported model_type {model_type!r} in config.json: "
            f"supported are {', '.join(map(repr, SUPPORTED_MODEL_TYPES))}."
        )
    act = config.get("hidden_act", "silu")
    if act not in ("silu", "swish"):
        raise ValueError(
            f"Unsupported hidden_act {act!r}: Mamba blocks use SiLU."
        )
    hidden = int(_require(config, "hidden_size"))
    expand = config.get("expand", 2)
    common = {
        "vocabulary_size": int(_require(config, "vocab_size")),
        "hidden_dim": hidden,
        "num_layers": int(_require(config, "num_hidden_layers")),
        "norm_epsilon": float(config.get("layer_norm_epsilon", 1e-5)),
        "tie_word_embeddings": bool(config.get("tie_word_embeddings", True)),
    }
    block = {
        "d_state": int(config.get("state_size", 16)),
        "d_conv": int(config.get("conv_kernel", 4)),
        "conv_bias": bool(config.get("use_conv_bias", True)),
        "bias": bool(config.get("use_bias", False)),
    }
    if model_type in ("mamba", "falcon_mamba"):
        block["intermediate_dim"] = int(
            config.get("intermediate_size") or int(expand * hidden)
        )
        rank = config.get("time_step_rank", "auto")
        block["dt_rank"] = (
            math.ceil(hidden / 16) if rank == "auto" else int(rank)
        )
        if model_type == "falcon_mamba":
            # Falcon-Mamba is Mamba with a weightless RMS norm on dt_low,
            # B and C (see `SelectiveSSM`'s `selection_norm_epsilon`).
            block["selection_norm_epsilon"] = float(
                config.get("mixer_rms_eps", 1e-6)
            )
        return {**common, "block_type": "mamba", "block_config": block}
    if not config.get("rms_norm", True):
        raise ValueError(
            "Unsupported Mamba-2 checkpoint with rms_norm=False: the gated "
            "norm here is an RMSNorm."
        )
    d_inner = int(expand * hidden)
    headdim = int(config.get("head_dim", 64))
    heads = config.get("num_heads")
    if heads is not None and int(heads) * headdim != d_inner:
        raise ValueError(
            f"config.json: num_heads ({heads}) x head_dim ({headdim}) must "
            f"equal expand x hidden_size ({d_inner})."
        )
    block.update(
        {
            "intermediate_dim": d_inner,
            "headdim": headdim,
            "ngroups": int(config.get("n_groups", 1)),
        }
    )
    limit = config.get("time_step_limit", (0.0, math.inf))
    return {
        **common,
        "block_type": "mamba2",
        "block_config": block,
        "time_step_limit": tuple(_float(v) for v in limit),
    }


def read_weights(folder):
    """All tensors of the checkpoint's safetensors file(s), as NumPy arrays.

    Reads `model.safetensors`, or every shard named by
    `model.safetensors.index.json`.
    """
    st = _requires("safetensors.numpy")
    index = os.path.join(folder, INDEX_FILE)
    single = os.path.join(folder, WEIGHTS_FILE)
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f).get("weight_map", {})
        files = sorted(set(weight_map.values()))
    elif os.path.exists(single):
        files = [WEIGHTS_FILE]
    else:
        raise ValueError(
            f"No {WEIGHTS_FILE} or {INDEX_FILE} in {folder!r} (only "
            "safetensors weights are read)."
        )
    tensors = {}
    for name in files:
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            raise ValueError(f"Missing weights shard {name!r} in {folder!r}.")
        tensors.update(st.load_file(path))
    return tensors


def _strip_prefix(tensors):
    """Keys without `backbone.` (a `MambaModel` saves none)."""
    return {
        (key[len("backbone.") :] if key.startswith("backbone.") else key): value
        for key, value in tensors.items()
    }


def _linear(weight):
    return np.transpose(weight)  # torch (out, in) -> Keras (in, out)


def _conv(weight):
    return np.transpose(weight, (2, 1, 0))  # (C, 1, K) -> (K, 1, C)


def weight_map(backbone):
    """{checkpoint key: (Keras variable, conversion)} of a backbone."""

    def same(w):
        return w

    entries = {
        "embeddings.weight": (backbone.token_embedding.embeddings, same),
        "norm_f.weight": (backbone.final_norm.scale, same),
    }
    if backbone.lm_head is not None:
        entries["lm_head.weight"] = (backbone.lm_head.kernel, _linear)
    for i, block in enumerate(backbone.blocks):
        p = f"layers.{i}."
        entries[p + "norm.weight"] = (block.norm_layer.scale, same)
        entries[p + "mixer.in_proj.weight"] = (block.in_proj.kernel, _linear)
        entries[p + "mixer.out_proj.weight"] = (block.out_proj.kernel, _linear)
        if block.bias:
            entries[p + "mixer.in_proj.bias"] = (block.in_proj.bias, same)
            entries[p + "mixer.out_proj.bias"] = (block.out_proj.bias, same)
        if backbone.block_type == "mamba":
            conv, ssm = block.conv, block.ssm
            entries[p + "mixer.x_proj.weight"] = (ssm.x_proj, _linear)
            entries[p + "mixer.dt_proj.weight"] = (ssm.dt_proj, _linear)
            entries[p + "mixer.dt_proj.bias"] = (ssm.dt_bias, same)
            entries[p + "mixer.A_log"] = (ssm.A_log, same)
            entries[p + "mixer.D"] = (ssm.D_skip, same)
        else:
            mixer = block.mixer
            conv = mixer.conv
            entries[p + "mixer.dt_bias"] = (mixer.dt_bias, same)
            entries[p + "mixer.A_log"] = (mixer.A_log, same)
            entries[p + "mixer.D"] = (mixer.D_skip, same)
            entries[p + "mixer.norm.weight"] = (block.gate_norm_scale, same)
        entries[p + "mixer.conv1d.weight"] = (conv.kernel, _conv)
        if block.conv_bias:
            entries[p + "mixer.conv1d.bias"] = (conv.bias, same)
    return entries


def load_weights(backbone, tensors):
    """Assigns checkpoint tensors to a backbone, checking names and shapes.

    Raises:
        ValueError: naming the missing, unexpected or mis-shaped tensors.
    """
    tensors = _strip_prefix(tensors)
    entries = weight_map(backbone)
    if backbone.lm_head is None:
        # A tied head may still be saved; it must then equal the embedding.
        head = tensors.pop("lm_head.weight", None)
        if head is not None and not np.array_equal(
            head, tensors.get("embeddings.weight")
        ):
            raise ValueError(
                "The checkpoint has an lm_head.weight different from its "
                "embedding but config.json says tie_word_embeddings=true."
            )
    missing = sorted(set(entries) - set(tensors))
    unexpected = sorted(set(tensors) - set(entries))
    for names, problem in (
        (missing, "lacks {} weight(s) of this architecture"),
        (unexpected, "has {} weight(s) this architecture does not use"),
    ):
        if names:
            shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
            raise ValueError(
                f"The checkpoint {problem.format(len(names))}: {shown}"
            )
    values = []
    for key, (variable, convert) in entries.items():
        value = convert(np.asarray(tensors[key]))
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Weight {key!r} has shape {tuple(tensors[key].shape)}; "
                f"this architecture expects {tuple(variable.shape)} "
                "(after conversion to the Keras layout)."
            )
        values.append((variable, value))
    for variable, value in values:
        variable.assign(value.astype(variable.dtype))


def special_token_ids(folder, config):
    """`{"bos", "eos", "pad"}` token ids from the checkpoint's configs."""
    ids = {
        "bos": config.get("bos_token_id"),
        "eos": config.get("eos_token_id"),
        "pad": config.get("pad_token_id"),
    }
    generation = os.path.join(folder, "generation_config.json")
    if os.path.exists(generation):
        with open(generation, encoding="utf-8") as f:
            gen = json.load(f)
        for key in ids:
            if ids[key] is None:
                ids[key] = gen.get(f"{key}_token_id")
    for key, value in ids.items():
        if isinstance(value, list):  # several eos ids: keep the first
            ids[key] = value[0] if value else None
    return ids
