"""Presets per task and backbone: the papers' LRA settings and small `cpu` ones.

`get_preset(task, backbone, name)` returns a dict with three parts:

- `model`: `depth`, `d_model` and block settings for `build_classifier`;
- `training`: `learning_rate`, `ssm_learning_rate`, `weight_decay`,
  `batch_size`, `epochs`, the schedule (`schedule`, `warmup_steps` or
  `warmup_epochs`, `final_lr_fraction`; see
  `keras_ssm.schedules.warmup_schedule`) and, where a reference sets them,
  `beta_2`, `clipnorm` and `decay_ssm_parameters`;
- `data`: sizes and lengths for `load_task_data`.

Sources of the `paper` presets:

- `s4d`: the LRA table of the S4/S4D reference (Gu et al., 2022, "On the
  Parameterization and Initialization of Diagonal State Space Models",
  Table of LRA hyper-parameters): depth, width H, state size N, norm,
  pre-norm, dropout, lr, batch size, epochs, weight decay; SSM parameters
  train with lr min(lr, 0.001) and no weight decay, Path-X with
  dt in [1e-4, 1e-2]. The schedule is the reference configs' (state-spaces/s4,
  `configs/experiment/lra/s4-lra-*.yaml`): linear warm-up, then cosine
  decay to 0; warm-up 1000 steps (ListOps, Text, Image) or one epoch
  (Retrieval, Pathfinder, Path-X).
- `etsmlp` / `etsmlp_gate`: the LRA architectures registered in the ETSMLP
  authors' code (Chu and Lin, 2024; `PKUAI-LINGroup/ETSMLP`,
  `architectures/LRA_model.py`; `reference_architecture` names them):
  depth, width, MLP hidden width, norm, dropout, CES ring (r_min, r_max,
  max_phase), dt range and max_lambda (`_ETSMLP_TABLE`). All are
  pre-norm, bidirectional, ReLU after the CES, without position
  embeddings, mean-pooled. The gated preset follows each task's `*_gate`
  architecture, the plain one the non-gated architecture with the same
  settings. ListOps training follows the command in the repository's
  README: lr 0.01, weight decay 0.01, batch 64 (32 x 2 accumulated),
  90000 updates (60 epochs of 96000), dropout 0.0, Adam betas (0.9, 0.98),
  gradient clipping at norm 1.0, 3000 warm-up updates and a linear decay to
  0 (`schedule="linear"`). The paper's Table 5
  (per-task training settings) was not available, so the other tasks'
  lr, batch size, epochs, weight decay and schedule are still the S4
  table's. As in the reference, the CES weights train at the model's lr
  and with the model's weight decay (`decay_ssm_parameters`). The
  reference's extra LRU-style normalisation for Path-X is not reproduced.
  Check Table 5 before quoting results as reproductions.
- `mamba`: there is no LRA table in the Mamba paper; these use the S4
  sizes with Mamba's defaults (state 16, expand 2, RMSNorm).
- `transformer`: the LRA paper's (Tay et al., 2021) Transformer baseline
  sizes (4 layers of width 256 (ListOps: 512), 4 (8) heads); LRA trains
  it with a different schedule.

Frequency-bias (Yu et al., 2024) LRA runs are the `s4d` presets with the
layer's `freq_scale` / `sobolev_order` set through `layer_kwargs`.

The `cpu` presets are ours: small widths, short generated ListOps and a
subset of the images, so that one run takes a few minutes on a laptop CPU.
"""

import collections
import copy

from applications.lra.tasks import get_task

PRESET_NAMES = ("cpu", "paper")
# Sequential image tasks: the `image` row of every table applies to them.
_SEQUENTIAL_IMAGES = ("mnist", "pmnist", "fashion_mnist", "pfashion_mnist")

# S4/S4D LRA table: depth, width, state, norm, prenorm, dropout, lr,
# batch size, epochs, weight decay.
_S4_TABLE = {
    "listops": (8, 128, 64, "batch", False, 0.0, 0.01, 50, 40, 0.05),
    "text": (6, 256, 64, "batch", True, 0.0, 0.01, 16, 32, 0.05),
    "retrieval": (6, 256, 64, "batch", True, 0.0, 0.01, 64, 20, 0.05),
    "image": (6, 512, 64, "layer", False, 0.1, 0.01, 50, 200, 0.05),
    "pathfinder": (6, 256, 64, "batch", True, 0.0, 0.004, 64, 200, 0.03),
    "pathx": (6, 256, 64, "batch", True, 0.0, 0.0005, 32, 50, 0.05),
}
_S4_TABLE.update({name: _S4_TABLE["image"] for name in _SEQUENTIAL_IMAGES})

# Warm-up of the S4 reference configs (cosine_warmup scheduler): its default
# 1000 steps, or one epoch where a config sets that.
_S4_WARMUP = {
    "listops": {"warmup_steps": 1000},
    "text": {"warmup_steps": 1000},
    "retrieval": {"warmup_epochs": 1},
    "image": {"warmup_steps": 1000},
    "pathfinder": {"warmup_epochs": 1},
    "pathx": {"warmup_epochs": 1},
}
_S4_WARMUP.update({name: _S4_WARMUP["image"] for name in _SEQUENTIAL_IMAGES})

_PAPER_DATA = {
    "listops": {
        "num_train": 96000,
        "num_validation": 2000,
        "num_test": 2000,
        "min_length": 500,
        "max_length": 2000,
        "max_depth": 10,
        "max_args": 10,
    },
    # The LRA paper's 4K bytes (its code truncated at 1000); S4 uses 4096.
    "text": {"max_length": 4096},
    "retrieval": {"max_length": 4000},
    "image": {},
    "pathfinder": {
        "image_size": 32,
        "contour_length": 14,
        "num_train": 160000,
        "num_validation": 20000,
        "num_test": 20000,
    },
    "pathx": {
        "image_size": 128,
        "contour_length": 14,
        "num_train": 160000,
        "num_validation": 20000,
        "num_test": 20000,
    },
}

_CPU_DATA = {
    "listops": {
        "num_train": 4000,
        "num_validation": 400,
        "num_test": 1000,
        "min_length": 10,
        "max_length": 64,
        "max_depth": 10,
        "max_args": 10,
    },
    # The LRA paper's 4K bytes (its code truncated at 1000); S4 uses 4096.
    "text": {"max_length": 4096},
    "retrieval": {"max_length": 1000},
    "image": {},
    "pathfinder": {
        "image_size": 32,
        "contour_length": 9,
        "num_train": 2000,
        "num_validation": 200,
        "num_test": 400,
    },
    "pathx": {
        "image_size": 64,
        "contour_length": 9,
        "num_train": 1000,
        "num_validation": 100,
        "num_test": 200,
    },
}
for _name in _SEQUENTIAL_IMAGES:
    _PAPER_DATA[_name] = {}
    _CPU_DATA[_name] = {"max_train": 3000, "max_test": 2000}


# ETSMLP reference architectures (PKUAI-LINGroup/ETSMLP,
# architectures/LRA_model.py): encoder_layers, encoder_embed_dim,
# encoder_k_dim / encoder_embed_dim (the CES runs at encoder_k_dim), norm
# type, dropout and CES ring (r_min, r_max, max_phase). The plain and gated
# architectures of a task differ only in `gate`; all are pre-norm (the
# only placement of `ETSMLPBlock`).
_ETSMLPRow = collections.namedtuple(
    "_ETSMLPRow", "depth width hidden_ratio norm dropout ring"
)
_ETSMLP_TABLE = {
    "listops": _ETSMLPRow(12, 160, 1, "layer", 0.1, (0.1, 0.9, 3.14)),
    "text": _ETSMLPRow(6, 160, 1, "layer", 0.1, (0.1, 0.9, 3.14)),
    "retrieval": _ETSMLPRow(6, 160, 1, "layer", 0.1, (0.9, 0.99, 0.314)),
    "image": _ETSMLPRow(12, 160, 2, "batch", 0.1, (0.6, 0.9, 3.14)),
    "pathfinder": _ETSMLPRow(6, 128, 2, "batch", 0.1, (0.9, 0.9999, 0.314)),
    "pathx": _ETSMLPRow(6, 128, 2, "batch", 0.1, (0.99, 0.9999, 0.314)),
}
# The registered (plain, gated) architectures each row follows.
_ETSMLP_ARCHITECTURES = {
    "listops": ("smlp_listop_complex_test1", "smlp_listop_complex_gate"),
    "text": ("smlp_lra_imdb_complex_test1", "smlp_lra_imdb_complex_gate"),
    "retrieval": ("smlp_lra_aan_complex_test1", "smlp_lra_aan_complex_gate"),
    "image": (
        "smlp_lra_cifar10_complex_test1",
        "smlp_lra_cifar10_complex_gate",
    ),
    "pathfinder": ("smlp_lra_complex_pf32", "smlp_lra_complex_pf32_gate"),
    "pathx": ("smlp_lra_complex_pf128_base", "smlp_lra_complex_pf128_gate"),
}
# The sequential image tasks have no reference architecture: CIFAR's.
for _name in _SEQUENTIAL_IMAGES:
    _ETSMLP_TABLE[_name] = _ETSMLP_TABLE["image"]
    _ETSMLP_ARCHITECTURES[_name] = _ETSMLP_ARCHITECTURES["image"]
# Shared by every architecture above (the CES defaults as well).
_ETSMLP_CES = {"dt_min": 1e-3, "dt_max": 0.1, "max_lambda": 0.9999}
# ListOps command of the reference README: Adam lr 0.01, weight decay 0.01,
# batch 32 x update-freq 2, 90000 updates (x 64 / 96000 = 60 epochs),
# dropout 0.0 (overriding the architecture's 0.1).
_ETSMLP_TRAINING = {
    "listops": {
        "learning_rate": 0.01,
        "weight_decay": 0.01,
        "batch_size": 64,
        "epochs": 60,
        "dropout": 0.0,
        # fairseq: --lr-scheduler linear_decay --warmup-updates 3000
        # --end-learning-rate 0.0 --adam-betas '(0.9, 0.98)' --clip-norm 1.0
        "schedule": "linear",
        "warmup_steps": 3000,
        "beta_2": 0.98,
        "clipnorm": 1.0,
    },
}


def reference_architecture(task, backbone):
    """The ETSMLP reference architecture that a `paper` preset follows.

    Args:
        task: a task name.
        backbone: "etsmlp" or "etsmlp_gate".

    Returns:
        The architecture's name in `architectures/LRA_model.py` of
        `PKUAI-LINGroup/ETSMLP` (CIFAR's for the sequential image tasks).

    Example:

    >>> reference_architecture("listops", "etsmlp_gate")
    'smlp_listop_complex_gate'
    """
    get_task(task)
    if backbone not in ("etsmlp", "etsmlp_gate"):
        raise ValueError(
            f"`backbone` must be 'etsmlp' or 'etsmlp_gate'; got {backbone!r}."
        )
    plain, gated = _ETSMLP_ARCHITECTURES[task]
    return gated if backbone == "etsmlp_gate" else plain


def _etsmlp_paper(task, training):
    row = _ETSMLP_TABLE[task]
    overrides = dict(_ETSMLP_TRAINING.get(task, {}))
    dropout = overrides.pop("dropout", row.dropout)
    training.update(overrides)
    # One learning rate for every weight, as in the reference (None: the
    # CES follows `learning_rate`, also when it is overridden).
    training["ssm_learning_rate"] = None
    # fairseq's Adam decays every weight, the CES ones included.
    training["decay_ssm_parameters"] = True
    model = {
        "depth": row.depth,
        "d_model": row.width,
        "hidden_ratio": row.hidden_ratio,
        "norm": row.norm,
        "dropout": dropout,
        "bidirectional": True,
        "layer_kwargs": {
            **dict(zip(("r_min", "r_max", "max_phase"), row.ring)),
            **_ETSMLP_CES,
        },
    }
    return model, training


def _paper(task, backbone):
    depth, width, state, norm, prenorm, dropout, lr, batch, epochs, wd = (
        _S4_TABLE[task]
    )
    block = {"dropout": dropout, "bidirectional": True}
    training = {
        "learning_rate": lr,
        "ssm_learning_rate": min(lr, 0.001),
        "weight_decay": wd,
        "batch_size": batch,
        "epochs": epochs,
        "schedule": "cosine",
        **_S4_WARMUP[task],
    }
    if backbone == "s4d":
        block.update(d_state=state, norm=norm, prenorm=prenorm)
        if task == "pathx":
            block["layer_kwargs"] = {"dt_min": 1e-4, "dt_max": 1e-2}
    elif backbone in ("etsmlp", "etsmlp_gate"):
        return _etsmlp_paper(task, training)
    elif backbone == "mamba":
        block.update(d_state=16, expand=2, d_conv=4, norm="rms")
    else:  # transformer
        width = 512 if task == "listops" else 256
        depth = 4
        block = {"num_heads": 8 if task == "listops" else 4, "dropout": 0.1}
        block["mlp_ratio"] = 2
        training.update(learning_rate=5e-4, ssm_learning_rate=None)
    return {"depth": depth, "d_model": width, **block}, training


def _cpu(task, backbone):
    block = {"dropout": 0.0, "bidirectional": True}
    training = {
        "learning_rate": 3e-3,
        "ssm_learning_rate": 1e-3,
        "weight_decay": 0.01,
        "batch_size": 32 if task == "listops" else 50,
        "epochs": 5 if task == "listops" else 3,
        # Short runs: no warm-up, cosine decay to 1% of the peak.
        "schedule": "cosine",
        "final_lr_fraction": 0.01,
    }
    # Two blocks of width 64: a few CPU-minutes per run (see the LRA
    # results in the README); raise `--depth` / `--d-model` for accuracy.
    width, depth = 64, 2
    if backbone == "s4d":
        block.update(d_state=32, norm="layer", prenorm=True)
    elif backbone in ("etsmlp", "etsmlp_gate"):
        block.update(norm="layer", hidden_ratio=2)
    elif backbone == "mamba":
        block.update(d_state=8, expand=2, d_conv=4, norm="rms")
    else:
        block = {"num_heads": 4, "dropout": 0.0, "mlp_ratio": 2}
        training.update(learning_rate=1e-3, ssm_learning_rate=None)
    return {"depth": depth, "d_model": width, **block}, training


def get_preset(task, backbone, name="cpu"):
    """The settings of preset `name` for `task` and `backbone`.

    Args:
        task: a task name (see `applications.lra.tasks.TASKS`).
        backbone: one of `applications.lra.models.BACKBONES`.
        name: "cpu" (minutes on a laptop) or "paper".

    Returns:
        `{"model": {...}, "training": {...}, "data": {...}}` (a fresh copy
        that callers may modify).

    Example:

    >>> preset = get_preset("listops", "s4d", "paper")
    >>> preset["model"]["depth"], preset["training"]["batch_size"]
    (8, 50)
    """
    from applications.lra.models import BACKBONES

    get_task(task)
    if backbone not in BACKBONES:
        raise ValueError(
            f"`backbone` must be one of {BACKBONES}; got {backbone!r}."
        )
    if name not in PRESET_NAMES:
        raise ValueError(
            f"`preset` must be one of {PRESET_NAMES}; got {name!r}."
        )
    build = _paper if name == "paper" else _cpu
    model, training = build(task, backbone)
    data = (_PAPER_DATA if name == "paper" else _CPU_DATA)[task]
    return copy.deepcopy(
        {"model": model, "training": training, "data": dict(data)}
    )


def sequence_length(task, data):
    """The input length implied by a preset's data settings."""
    spec = get_task(task)
    if task in ("listops", "text", "retrieval"):
        return data.get("max_length", spec.sequence_length)
    if task in ("pathfinder", "pathx"):
        return data["image_size"] ** 2
    return spec.sequence_length
