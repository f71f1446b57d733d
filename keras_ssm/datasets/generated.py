"""A cache of generated data sets (ListOps, Pathfinder) as `.npz` files.

Generation is deterministic, so the cache is only a speed-up: a cached file
that cannot be read or does not hold what its name promises is regenerated
and replaced (with a warning naming it), and a cache that cannot be written
(a read-only directory, a full disk) still returns the data.
"""

import hashlib
import json
import os
import warnings

import numpy as np

from keras_ssm.datasets.download import cache_dir
from keras_ssm.datasets.download import private_partial

SPLITS = ("train", "validation", "test")
# Bump when a generator's output changes, so that stale caches are not reused
# (Pathfinder 2: the vectorised generator of 2026-11-23).
GENERATOR_VERSIONS = {"listops": 1, "pathfinder": 2}
KEYS = tuple(f"{split}_{part}" for split in SPLITS for part in ("x", "y"))


def cache_path(kind, params):
    """Where `cached(kind, params, ...)` keeps its file (not created)."""
    params = {**params, "generator_version": GENERATOR_VERSIONS[kind]}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    return os.path.join(
        cache_dir(create=False),
        "generated",
        f"{kind}-{key.hexdigest()[:16]}.npz",
    )


def cached(kind, params, make, shapes=None, num_classes=None):
    """Generated splits, cached as .npz under `cache_dir()/generated`.

    The file name hashes the generator arguments and `GENERATOR_VERSIONS`,
    so changing any argument, or the generator itself, regenerates.

    Args:
        kind: "listops" or "pathfinder".
        params: the generator arguments (JSON-serialisable).
        make: function returning `{split: (x, y)}` for the three splits.
        shapes: `{split: (x_shape, y_shape)}` a cached file must match, or
            None (then only the keys and that x and y agree in length are
            checked).
        num_classes: cached labels must be integers in `[0, num_classes)`;
            None skips the check.

    Returns:
        `{"train": (x, y), "validation": (x, y), "test": (x, y)}`.

    Example:

    ```python
    splits = cached("listops", {"max_length": 32}, make, num_classes=10)
    ```
    """
    path = cache_path(kind, params)
    if os.path.exists(path):
        try:
            return _read(path, shapes, num_classes)
        except Exception as error:  # unreadable in any way: regenerate
            warnings.warn(
                f"The cached data file {path} is unreadable or corrupt "
                f"({type(error).__name__}: {error}); regenerating the data "
                "and replacing the file.",
                stacklevel=2,
            )
    splits = make()
    _write(path, splits)
    return splits


def generate_splits(
    kind,
    generate,
    params,
    *,
    sizes,
    seed,
    example_shape,
    num_classes,
    progress=False,
):
    """The three splits of a generator, seeded and cached with `cached`.

    Split i (train, validation, test) is `generate(n_i, seed=3 * seed + i,
    progress=progress, **params)`, so the splits are independent streams.

    Args:
        kind: "listops" or "pathfinder" (the cache's file prefix).
        generate: the generator, e.g. `listops.generate_listops`.
        params: its size-independent arguments (part of the cache key).
        sizes: the numbers of train, validation and test examples.
        seed: the data set's seed.
        example_shape: the shape of one generated x (cached files must
            match it).
        num_classes: labels are integers in `[0, num_classes)`.
        progress: show the generator's progress bar.

    Returns:
        `{"train": (x, y), "validation": (x, y), "test": (x, y)}`.
    """
    sizes = dict(zip(SPLITS, sizes))

    def make():
        return {
            split: generate(n, seed=seed * 3 + i, progress=progress, **params)
            for i, (split, n) in enumerate(sizes.items())
        }

    return cached(
        kind,
        {**params, "sizes": list(sizes.values()), "seed": seed},
        make,
        shapes={
            split: ((n, *example_shape), (n,)) for split, n in sizes.items()
        },
        num_classes=num_classes,
    )


def _read(path, shapes, num_classes):
    """The splits of a cache file, fully read and checked.

    Raises:
        ValueError: when the file lacks a split or holds other shapes or
            labels than expected (read errors pass through as they are).
    """
    with np.load(path, allow_pickle=False) as data:
        if sorted(data.files) != sorted(KEYS):
            raise ValueError(f"it holds {sorted(data.files)}, not {list(KEYS)}")
        # Reading every array here decompresses it, which also catches a
        # truncated member.
        splits = {
            split: (
                np.asarray(data[f"{split}_x"]),
                np.asarray(data[f"{split}_y"]),
            )
            for split in SPLITS
        }
    for split, (x, y) in splits.items():
        if y.ndim != 1 or x.ndim < 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"its {split} split has x of shape {x.shape} and y of shape "
                f"{y.shape}"
            )
        if shapes is not None and (x.shape, y.shape) != tuple(
            tuple(s) for s in shapes[split]
        ):
            raise ValueError(
                f"its {split} split has shapes {x.shape} and {y.shape}, "
                f"expected {tuple(shapes[split])}"
            )
        if num_classes is not None and y.size:
            if not np.issubdtype(y.dtype, np.integer):
                raise ValueError(f"its {split} labels are {y.dtype}")
            if y.min() < 0 or y.max() >= num_classes:
                raise ValueError(
                    f"its {split} labels span [{y.min()}, {y.max()}], "
                    f"outside [0, {num_classes})"
                )
    return splits


def _write(path, splits):
    """Writes the splits to a temporary file, then renames it onto `path`.

    A cache that cannot be written only costs the speed-up: the error is a
    warning and the caller still gets its data.
    """
    arrays = {}
    for split, (x, y) in splits.items():
        arrays[f"{split}_x"], arrays[f"{split}_y"] = x, y
    partial = None
    try:
        # Parallel training runs may generate the same data at once: each
        # writes its own file, the contents are identical.
        partial = private_partial(path, suffix=".npz")
        np.savez_compressed(partial, **arrays)
        os.replace(partial, path)
    except OSError as error:
        warnings.warn(
            f"Could not write the data cache file {path} ({error}); the "
            "data is returned but not cached.",
            stacklevel=3,
        )
    finally:
        if partial is not None and os.path.exists(partial):
            os.remove(partial)


def as_tuples(splits):
    """`{split: (x, y)}` to `((x_train, y_train), (x_val, y_val), (x_test,
    y_test))`, the `keras.datasets` form."""
    return tuple(splits[split] for split in SPLITS)
