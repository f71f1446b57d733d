"""The LRA tasks: input kind, sizes, and how to load each one's splits."""

import dataclasses
import hashlib
import json
import os

import numpy as np

from applications.lra.data import download


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What a classifier needs to know about a task.

    Attributes:
        name: task name (a key of `TASKS`).
        input_kind: "tokens" (int ids, 0 = padding) or "pixels" (float).
        num_classes: number of labels.
        sequence_length: default input length.
        vocab_size: token vocabulary size including padding ("tokens").
        pair: True for two-tower matching (Retrieval).
    """

    name: str
    input_kind: str
    num_classes: int
    sequence_length: int
    vocab_size: int = 0
    pair: bool = False


TASKS = {
    "listops": TaskSpec("listops", "tokens", 10, 2000, vocab_size=17),
    "text": TaskSpec("text", "tokens", 2, 1000, vocab_size=257),
    "retrieval": TaskSpec(
        "retrieval", "tokens", 2, 4000, vocab_size=257, pair=True
    ),
    "image": TaskSpec("image", "pixels", 10, 1024),
    "pathfinder": TaskSpec("pathfinder", "pixels", 2, 1024),
    "pathx": TaskSpec("pathx", "pixels", 2, 16384),
    "mnist": TaskSpec("mnist", "pixels", 10, 784),
    "pmnist": TaskSpec("pmnist", "pixels", 10, 784),
    "fashion_mnist": TaskSpec("fashion_mnist", "pixels", 10, 784),
    "pfashion_mnist": TaskSpec("pfashion_mnist", "pixels", 10, 784),
}


def get_task(name):
    """The `TaskSpec` of `name`; a ValueError lists the known tasks."""
    if name not in TASKS:
        raise ValueError(f"`task` must be one of {tuple(TASKS)}; got {name!r}.")
    return TASKS[name]


# Bump when a generator's output changes, so that stale caches are not reused
# (Pathfinder 2: the vectorised generator of 2026-11-23).
_GENERATOR_VERSIONS = {"listops": 1, "pathfinder": 2}


def _cached(kind, params, make):
    """Generated splits cached as .npz under the cache directory.

    The file name hashes the generator arguments and `_GENERATOR_VERSIONS`,
    so changing any argument, or the generator itself, regenerates;
    generation is deterministic, so the cache is only a speed-up.
    """
    params = {**params, "generator_version": _GENERATOR_VERSIONS[kind]}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    path = os.path.join(
        download.cache_dir(), "generated", f"{kind}-{key.hexdigest()[:16]}.npz"
    )
    if os.path.exists(path):
        with np.load(path) as data:
            return {
                split: (data[f"{split}_x"], data[f"{split}_y"])
                for split in ("train", "validation", "test")
            }
    splits = make()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arrays = {}
    for split, (x, y) in splits.items():
        arrays[f"{split}_x"], arrays[f"{split}_y"] = x, y
    np.savez_compressed(f"{path}.tmp.npz", **arrays)
    os.replace(f"{path}.tmp.npz", path)
    return splits


def _split_sizes(data):
    return data["num_train"], data["num_validation"], data["num_test"]


def load_listops(data, seed=0, progress=True):
    """Generated ListOps splits (or the LRA TSVs with `data["directory"]`)."""
    from applications.lra.data import listops

    if data.get("directory"):
        return listops.load_release(data["directory"], data["max_length"])
    sizes = _split_sizes(data)
    params = {
        k: data[k]
        for k in ("min_length", "max_length", "max_depth", "max_args")
    }

    def make():
        # Distinct seeds per split: the splits share no expressions by
        # construction of independent streams.
        return {
            split: listops.generate_listops(
                n, seed=seed * 3 + i, progress=progress, **params
            )
            for i, (split, n) in enumerate(
                zip(("train", "validation", "test"), sizes)
            )
        }

    return _cached("listops", {**params, "sizes": sizes, "seed": seed}, make)


def load_pathfinder(data, seed=0, progress=True):
    """Generated Pathfinder/Path-X splits (or the LRA release directory)."""
    from applications.lra.data import pathfinder

    size = data["image_size"]
    if data.get("directory"):
        images, labels = pathfinder.load_release(data["directory"], size)
        order = np.random.default_rng(seed).permutation(len(labels))
        n_val = n_test = len(labels) // 10
        parts = {
            "test": order[:n_test],
            "validation": order[n_test : n_test + n_val],
            "train": order[n_test + n_val :],
        }
        splits = {k: (images[v], labels[v]) for k, v in parts.items()}
    else:
        sizes = _split_sizes(data)
        params = {"image_size": size, "contour_length": data["contour_length"]}

        def make():
            return {
                split: pathfinder.generate_pathfinder(
                    n, seed=seed * 3 + i, progress=progress, **params
                )
                for i, (split, n) in enumerate(
                    zip(("train", "validation", "test"), sizes)
                )
            }

        splits = _cached(
            "pathfinder", {**params, "sizes": sizes, "seed": seed}, make
        )
    train_x = pathfinder.images_to_sequences(splits["train"][0])
    mean = float(splits["train"][0].mean()) / 255.0
    std = float((splits["train"][0] / 255.0).std()) + 1e-6
    out = {"train": (train_x, splits["train"][1])}
    for split in ("validation", "test"):
        x, y = splits[split]
        out[split] = (pathfinder.images_to_sequences(x, mean, std), y)
    return out


def load_task_data(task, data, seed=0, progress=True):
    """Loads the splits of `task` as described by a preset's `data` dict.

    Args:
        task: a task name (see `TASKS`).
        data: the preset's data settings (sizes, lengths, directories).
        seed: seed of generators and of train/validation splits.
        progress: tqdm bars for generation and downloads.

    Returns:
        `{"train": (x, y), "validation": (x, y), "test": (x, y)}`.
    """
    get_task(task)
    if task == "listops":
        return load_listops(data, seed, progress)
    if task in ("pathfinder", "pathx"):
        return load_pathfinder(data, seed, progress)
    if task == "text":
        from applications.lra.data.text import load_text

        return load_text(length=data["max_length"], seed=seed)
    if task == "retrieval":
        from applications.lra.data.retrieval import load_retrieval

        return load_retrieval(
            length=data["max_length"], directory=data.get("directory")
        )
    if task == "image":
        from applications.lra.data.image import load_image

        return load_image(seed=seed)
    from applications.lra.data.mnist import load_sequential_mnist

    name = "fashion-mnist" if "fashion" in task else "mnist"
    return load_sequential_mnist(
        name,
        permuted=task.startswith("p"),
        max_train=data.get("max_train"),
        max_test=data.get("max_test"),
        seed=seed,
    )


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
