"""The preset registry: every named configuration of the model zoo, as data.

The registry is `registry.json` beside this module, kept compact for
review: each distinct training recipe, data setting and shared source is
written once under a name, and each preset, named
`"<backbone>_<task>_<size>"`, refers to them (see `expand`). Expanded,
every preset has

- `task`: the task or data set it is made for;
- `model`: `{"class": ..., "config": ...}`, the arguments of a
  `keras_ssm.models` class (`SSMClassifier`, `SSMForecaster`,
  `TransformerForecaster`, `InformerForecaster`), the backbone's included;
- `training`: the recommended recipe (learning rates, weight decay, batch
  size, epochs, schedule; see `keras_ssm.models.training_recipe`);
- `data`: the arguments of the data set's `load_data`;
- `source`: the paper table or reference configuration it follows.

This module imports neither Keras nor the layers, so that the layers can
read reference data (the CES rings) from the same registry.

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
- `etsmlp` / `etsmlp_gate`: the ETSMLP paper (Chu and Lin, 2024,
  *Incorporating Exponential Smoothing into MLP*). Table 5, per LRA task:
  width (the table's embedding size D), depth (L), MLP hidden width (H),
  norm, lr, weight decay and dropout. Appendix B: Adam with betas
  (0.9, 0.98), a linear warm-up from 1e-7 over the first 10% of training
  (`warmup_fraction=0.1`, `warmup_initial_lr=1e-7`) then a linear decay to
  0 (`schedule="linear"`), bidirectional blocks, max_lambda 0.9999. The
  CES ring (r_min, r_max, max_phase) and dt range, which the paper does
  not tabulate, come from the LRA architectures registered in the
  authors' code (`PKUAI-LINGroup/ETSMLP`, `architectures/LRA_model.py`;
  each preset's `source` names them); all are pre-norm, ReLU after the
  CES, without position embeddings, mean-pooled. Where that code and
  Table 5 differ (Text's depth 6 against 4; dropout 0.1 against 0 on
  Image, Pathfinder and Path-X), the presets follow the paper. Batch size
  and epochs are not in Table 5: ListOps takes the reference README's
  command (batch 64 as 32 x 2 accumulated, 60 epochs of 96000, i.e.
  90000 updates, gradient clipping at norm 1.0), the other tasks the S4D
  table's. The sequential MNIST/Fashion-MNIST presets, which the paper
  does not run, use the Image row. As in the reference, the CES weights
  train at the model's lr and with the model's weight decay
  (`decay_ssm_parameters`). The reference's extra LRU-style
  normalisation is not reproduced.
- `mamba`: there is no LRA table in the Mamba paper; these use the S4
  sizes with Mamba's defaults (state 16, expand 2, RMSNorm).
- `transformer`: the LRA paper's (Tay et al., 2021) Transformer baseline
  sizes (4 layers of width 256 (ListOps: 512), 4 (8) heads); LRA trains
  it with a different schedule.

Frequency-bias (Yu et al., 2024) LRA runs are the `s4d` presets with the
layer's `freq_scale` / `sobolev_order` set through the backbone's
`block_kwargs`.

The `cpu` presets are ours: small widths, short generated ListOps and a
subset of the images, so that one run takes a few minutes on a laptop CPU.

The forecasting presets (`<model>_<ett set>_<size>`, models "s4d",
"etsmlp", "etsmlp_gate", "mamba", "transformer", "informer") are ours:
`base` is the forecasting command line's defaults (input 336, width 64),
`cpu` the smaller configuration of the ETTh1 measurement
(`applications/forecasting/measure_etth1.sh`), both on the Informer
protocol (Zhou et al., 2021).
"""

import copy
import functools
import json
import os

_REGISTRY_PATH = os.path.join(os.path.dirname(__file__), "registry.json")
# The LRA tasks whose ETSMLP `paper` presets carry the reference rings.
_RING_TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")


def _sorted(value):
    """`value` with every dict's keys in sorted order (the stored order)."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def expand(compact):
    """The registry entries of the compact `registry.json`.

    The file keeps each distinct training recipe, data setting and shared
    source once, under a name (`training`, `data`, `sources`); a preset
    names them (`training`, `data`, `source_ref`, or a literal `source`)
    and gives its model as `class`, `config` and, for the SSM models,
    `backbone`.

    Args:
        compact: the parsed `registry.json`.

    Returns:
        `{name: {"task", "model": {"class", "config"}, "training",
        "data", "source"}}`.

    Raises:
        ValueError: for a reference to an unknown name.
    """

    def lookup(table, name, preset):
        if name not in compact[table]:
            raise ValueError(
                f"registry.json: preset {preset!r} refers to {table} "
                f"{name!r}, which is not defined."
            )
        return copy.deepcopy(compact[table][name])

    entries = {}
    for name, item in compact["presets"].items():
        config = dict(item["config"])
        if "backbone" in item:
            config["backbone"] = item["backbone"]
        if "source_ref" in item:
            source = lookup("sources", item["source_ref"], name)
        else:
            source = item["source"]
        entries[name] = _sorted(
            {
                "task": item["task"],
                "model": {"class": item["class"], "config": config},
                "training": lookup("training", item["training"], name),
                "data": lookup("data", item["data"], name),
                "source": source,
            }
        )
    return {name: entries[name] for name in sorted(entries)}


@functools.lru_cache(maxsize=1)
def _registry():
    with open(_REGISTRY_PATH) as f:
        return expand(json.load(f))


def list_presets(task=None):
    """The names of all presets, sorted (optionally those of one `task`).

    A name is a recipe (architecture, training and data settings), not
    trained weights: `Model.from_preset(name)` builds an untrained model.
    Trained models are preset folders, written by `model.save_to_preset`.

    Example:

    >>> "s4d_listops_cpu" in list_presets()
    True
    """
    return sorted(
        name
        for name, entry in _registry().items()
        if task is None or entry["task"] == task
    )


def get_preset(name):
    """A fresh copy of preset `name`'s registry entry.

    Args:
        name: a preset name (see `list_presets()`).

    Returns:
        A dict with `task`, `model`, `training`, `data` and `source`;
        callers may modify it.

    Raises:
        ValueError: for an unknown name; the message lists close names.

    Example:

    >>> get_preset("s4d_listops_paper")["training"]["batch_size"]
    50
    """
    registry = _registry()
    if not isinstance(name, str) or name not in registry:
        import difflib

        # Compared in lower case, so that "S4D_ListOps_CPU" finds its name.
        lowered = {key.lower(): key for key in registry}
        close = [
            lowered[key]
            for key in difflib.get_close_matches(
                str(name).lower(), list(lowered), n=5
            )
        ]
        raise ValueError(
            f"`preset` must be one of keras_ssm.models.list_presets(); got "
            f"{name!r}. Close names: {close}."
        )
    return copy.deepcopy(registry[name])


def lra_rings():
    """CES rings (r_min, r_max, max_phase) of the ETSMLP LRA presets.

    Read from the `etsmlp_<task>_paper` presets, which follow the
    architectures registered by the ETSMLP authors (Chu and Lin, 2024).

    Returns:
        `{task: (r_min, r_max, max_phase)}` for the six LRA tasks.
    """
    rings = {}
    for task in _RING_TASKS:
        backbone = _registry()[f"etsmlp_{task}_paper"]["model"]["config"]
        kwargs = backbone["backbone"]["block_kwargs"]
        rings[task] = (kwargs["r_min"], kwargs["r_max"], kwargs["max_phase"])
    return rings
