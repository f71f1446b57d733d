"""A cache of generated data sets (ListOps, Pathfinder) as `.npz` files."""

import hashlib
import json
import os
import tempfile

import numpy as np

from keras_ssm.datasets.download import cache_dir

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
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arrays = {}
    for split, (x, y) in splits.items():
        arrays[f"{split}_x"], arrays[f"{split}_y"] = x, y
    # A private temporary file per writer: processes that generate the same
    # data at once (e.g. parallel training runs) each write their own file
    # and the last atomic rename wins, with identical contents.
    descriptor, partial = tempfile.mkstemp(
        suffix=".npz",
        prefix=os.path.basename(path) + ".",
        dir=os.path.dirname(path),
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            np.savez_compressed(file, **arrays)
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
