"""The preset registry: every named configuration of the model zoo, as data.

The registry is `registry.json` beside this module: one entry per preset,
named `"<backbone>_<task>_<size>"`, each with

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
"""

import copy
import functools
import json
import os

_REGISTRY_PATH = os.path.join(os.path.dirname(__file__), "registry.json")
# The LRA tasks whose ETSMLP `paper` presets carry the reference rings.
_RING_TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")


@functools.lru_cache(maxsize=1)
def _registry():
    with open(_REGISTRY_PATH) as f:
        return json.load(f)


def list_presets(task=None):
    """The names of all presets, sorted (optionally those of one `task`).

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

        close = difflib.get_close_matches(str(name), list(registry), n=5)
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
