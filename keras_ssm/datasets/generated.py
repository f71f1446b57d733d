"""A cache of generated data sets (ListOps, Pathfinder) as `.npz` files."""

import hashlib
import json
import os

import numpy as np

from keras_ssm.datasets.download import cache_dir
from keras_ssm.datasets.download import private_partial

SPLITS = ("train", "validation", "test")
# Bump when a generator's output changes, so that stale caches are not reused
# (Pathfinder 2: the vectorised generator of 2026-11-23).
GENERATOR_VERSIONS = {"listops": 1, "pathfinder": 2}


def cached(kind, params, make):
    """Generated splits, cached as .npz under `cache_dir()/generated`.

    The file name hashes the generator arguments and `GENERATOR_VERSIONS`,
    so changing any argument, or the generator itself, regenerates;
    generation is deterministic, so the cache is only a speed-up.

    Args:
        kind: "listops" or "pathfinder".
        params: the generator arguments (JSON-serialisable).
        make: function returning `{split: (x, y)}` for the three splits.

    Returns:
        `{"train": (x, y), "validation": (x, y), "test": (x, y)}`.
    """
    params = {**params, "generator_version": GENERATOR_VERSIONS[kind]}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    path = os.path.join(
        cache_dir(), "generated", f"{kind}-{key.hexdigest()[:16]}.npz"
    )
    if os.path.exists(path):
        with np.load(path) as data:
            return {
                split: (data[f"{split}_x"], data[f"{split}_y"])
                for split in SPLITS
            }
    splits = make()
    arrays = {}
    for split, (x, y) in splits.items():
        arrays[f"{split}_x"], arrays[f"{split}_y"] = x, y
    # Parallel training runs may generate the same data at once: each
    # writes its own file, the contents are identical.
    partial = private_partial(path, suffix=".npz")
    try:
        np.savez_compressed(partial, **arrays)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    return splits


def as_tuples(splits):
    """`{split: (x, y)}` to `((x_train, y_train), (x_val, y_val), (x_test,
    y_test))`, the `keras.datasets` form."""
    return tuple(splits[split] for split in SPLITS)
