"""The LRA tasks of the CLI: preset names and data splits.

Everything here is a thin layer over `keras_ssm.models` presets and
`keras_ssm.datasets` loaders.
"""

from keras_ssm.models import BLOCK_TYPES
from keras_ssm.presets import get_preset
from keras_ssm.presets import list_presets

TASKS = (
    "listops",
    "text",
    "retrieval",
    "image",
    "pathfinder",
    "pathx",
    "mnist",
    "pmnist",
    "fashion_mnist",
    "pfashion_mnist",
)
# Every block type of the library (`keras_ssm.models.BLOCK_TYPES`).
BACKBONES = tuple(BLOCK_TYPES)
PRESET_SIZES = ("cpu", "paper")


def preset_name(task, backbone, size):
    """The registry name of an LRA preset, e.g. "s4d_listops_cpu"."""
    name = f"{backbone}_{task}_{size}"
    if name not in list_presets():
        raise ValueError(f"No preset {name!r}; see list_presets().")
    return name


def load_task_data(data, seed=0):
    """The splits of a preset's `data` settings, as a dict.

    Returns:
        `{"train": (x, y), "validation": (x, y), "test": (x, y)}`.
    """
    from keras_ssm.datasets import load_preset_data

    train, validation, test = load_preset_data(data, seed=seed)
    return {"train": train, "validation": validation, "test": test}


def truncate_splits(splits, max_train=None, max_validation=None, max_test=None):
    """Keeps the first examples of each split (for quick runs)."""
    limits = {
        "train": max_train,
        "validation": max_validation,
        "test": max_test,
    }
    out = {}
    for split, (x, y) in splits.items():
        n = limits.get(split)
        if n is None:
            out[split] = (x, y)
        elif isinstance(x, (tuple, list)):
            out[split] = (tuple(part[:n] for part in x), y[:n])
        else:
            out[split] = (x[:n], y[:n])
    return out


__all__ = ["get_preset", "list_presets"]
