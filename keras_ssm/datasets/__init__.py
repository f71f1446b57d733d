"""Data sets in the `keras.datasets` style.

Each module's `load_data(...)` returns `(x_train, y_train), (x_val,
y_val), (x_test, y_test)` as NumPy arrays:

- `listops`: ListOps, generated with the LRA procedure (seeded, cached,
  offline) or the LRA TSVs;
- `pathfinder`: Pathfinder / Path-X images as pixel sequences, generated at
  32, 64 or 128 px or read from the LRA release;
- `imdb_bytes`, `aan`, `cifar_gray`: the LRA Text, Retrieval and Image
  tasks;
- `mnist`, `fashion_mnist`: sequential and permuted pixel sequences;
- `ett`: ETT forecasting windows with the Informer splits (plus the
  scaler).

Downloads go to `$KERAS_SSM_CACHE` (default `~/.keras/datasets/keras_ssm`)
and are checked against their checksums; copies placed by hand are found
under `$KERAS_SSM_DATA`. `load_preset_data(name)` loads the data set of a
preset with the preset's sizes.
"""

from keras_ssm.datasets import aan
from keras_ssm.datasets import cifar_gray
from keras_ssm.datasets import ett
from keras_ssm.datasets import fashion_mnist
from keras_ssm.datasets import imdb_bytes
from keras_ssm.datasets import listops
from keras_ssm.datasets import mnist
from keras_ssm.datasets import pathfinder
from keras_ssm.datasets.download import DataUnavailableError
from keras_ssm.datasets.download import cache_dir
from keras_ssm.datasets.download import data_dir

# Data set of each preset task: (module, fixed arguments).
_TASK_DATA = {
    "listops": (listops, {}),
    "text": (imdb_bytes, {}),
    "retrieval": (aan, {}),
    "image": (cifar_gray, {}),
    "pathfinder": (pathfinder, {}),
    "pathx": (pathfinder, {}),
    "mnist": (mnist, {}),
    "pmnist": (mnist, {"permuted": True}),
    "fashion_mnist": (fashion_mnist, {}),
    "pfashion_mnist": (fashion_mnist, {"permuted": True}),
}


def load_preset_data(preset, seed=0, **overrides):
    """The data of a preset (its `data` settings), via `load_data`.

    Args:
        preset: a preset name, or a preset's `data` dict (with its
            `dataset` key).
        seed: seed of generators and splits (where the data set has one).
        **overrides: `load_data` arguments replacing the preset's.

    Returns:
        What the data set's `load_data` returns.

    Example:

    ```python
    train, val, test = load_preset_data("s4d_listops_cpu")
    ```
    """
    from keras_ssm import presets

    data = dict(
        presets.get_preset(preset)["data"]
        if isinstance(preset, str)
        else preset
    )
    data.update(overrides)
    dataset = data.pop("dataset")
    if dataset not in _TASK_DATA:  # a forecasting CSV: ETTh1, ...
        return ett.load_data(dataset, **data)
    module, fixed = _TASK_DATA[dataset]
    if module is not aan:  # the AAN release has its own fixed splits
        data.setdefault("seed", seed)
    return module.load_data(**fixed, **data)
