"""Sequential (and permuted) MNIST / Fashion-MNIST from IDX files.

Each 28x28 image becomes a sequence of 784 pixels in raster order (or in a
fixed random permutation, the "permuted" variant), shape (n, 784, 1),
standardised with the training set's mean and standard deviation.

Files are read from `$KERAS_SSM_DATA/<name>/` when that variable is set and
holds them, otherwise fetched into the cache from the canonical sources
(with `keras.utils.get_file`) and checked against the MD5s their publishers
list. (`keras.datasets.fashion_mnist` reads the same files but checks no
digest, so it is not used.)
"""

import gzip

import numpy as np

from keras_ssm.datasets import lra_files as download
from keras_ssm.utils.validation import check_class_labels
from keras_ssm.utils.validation import check_fraction
from keras_ssm.utils.validation import check_int

SOURCES = {
    "fashion-mnist": {
        "base_url": "http://fashion-mnist.s3-website.eu-central-1."
        "amazonaws.com/",
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
    "mnist": {
        "base_url": "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
}

NUM_CLASSES = 10
_IDX_DTYPES = {0x08: "uint8", 0x09: "int8", 0x0B: ">i2", 0x0C: ">i4"}


def read_idx(path):
    """Reads an IDX file (optionally gzip-compressed) into a NumPy array.

    The format: two zero bytes, a type code, the number of dimensions, one
    big-endian uint32 per dimension, then the data.
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number).")
    dtype, ndim = _IDX_DTYPES.get(data[2]), data[3]
    if dtype is None:
        raise ValueError(f"{path}: unknown IDX type code {data[2]:#x}.")
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    array = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(
            f"{path}: header says shape {shape} but holds {array.size} "
            "values (truncated file?)."
        )
    return array.reshape(shape)


def _idx_path(name, filename):
    """Local copy if present (not checksummed: re-packed copies differ),
    otherwise the verified download."""
    local = download.local_copy(name, filename)
    if local is not None:
        return local
    source = SOURCES[name]
    return download.fetch(
        source["base_url"] + filename,
        filename,
        name,
        md5=source["md5"][filename],
    )


def load_sequential_mnist(
    name="fashion-mnist",
    permuted=False,
    validation_fraction=0.1,
    max_train=None,
    max_test=None,
    seed=0,
):
    """Sequential (or permuted) MNIST or Fashion-MNIST splits.

    Args:
        name: "fashion-mnist" or "mnist".
        permuted: apply one fixed random pixel permutation (seeded).
        validation_fraction: part of the training images held out (the
            last ones after a seeded shuffle).
        max_train: keep at most this many training images (quick runs).
        max_test: keep at most this many test images.
        seed: seed of the shuffle and of the permutation.

    Returns:
        `{"train": (x, y), "validation": (x, y), "test": (x, y)}` with
        float32 x of shape (n, 784, 1) and int32 labels.

    Example:

    ```python
    splits = load_sequential_mnist("fashion-mnist", max_train=1000)
    splits["train"][0].shape
    # (900, 784, 1)
    ```
    """
    if name not in SOURCES:
        raise ValueError(
            f"`name` must be one of {tuple(SOURCES)}; got {name!r}."
        )
    validation_fraction = check_fraction(
        "validation_fraction", validation_fraction
    )
    max_train = check_int("max_train", max_train, minimum=1, allow_none=True)
    max_test = check_int("max_test", max_test, minimum=1, allow_none=True)
    seed = check_int("seed", seed, minimum=0)
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_idx_path(name, f"{prefix}-images-idx3-ubyte.gz"))
        labels = read_idx(_idx_path(name, f"{prefix}-labels-idx1-ubyte.gz"))
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{name} {split}: {images.shape[0]} images but "
                f"{labels.shape[0]} labels."
            )
        check_class_labels(f"The {name} {split} labels", labels, NUM_CLASSES)
        arrays[split] = (images, labels.astype("int32"))
    rng = np.random.default_rng(seed)
    images, labels = arrays["train"]
    order = rng.permutation(images.shape[0])
    if max_train is not None:
        order = order[:max_train]
    num_val = int(round(len(order) * validation_fraction))
    train_idx, val_idx = (
        order[: len(order) - num_val],
        order[len(order) - num_val :],
    )
    if len(train_idx) == 0:
        raise ValueError(
            f"No training images are left: {len(order)} images with "
            f"validation_fraction={validation_fraction} all go to the "
            "validation split; raise `max_train` or lower "
            "`validation_fraction`."
        )
    test_images, test_labels = arrays["test"]
    if max_test is not None:
        test_images, test_labels = (
            test_images[:max_test],
            test_labels[:max_test],
        )
    permutation = rng.permutation(784) if permuted else None

    def to_sequences(x):
        x = x.reshape(x.shape[0], -1).astype("float32") / 255.0
        if permutation is not None:
            x = x[:, permutation]
        return x[..., None]

    train_x = to_sequences(images[train_idx])
    mean, std = float(train_x.mean()), float(train_x.std()) + 1e-6

    def standardise(x):
        return (x - mean) / std

    return {
        "train": (standardise(train_x), labels[train_idx]),
        "validation": (
            standardise(to_sequences(images[val_idx])),
            labels[val_idx],
        ),
        "test": (standardise(to_sequences(test_images)), test_labels),
    }


def load_data(permuted=False, max_train=None, max_test=None, seed=0):
    """Sequential (or permuted) MNIST: 784-step pixel sequences.

    Args:
        permuted: apply one fixed, seeded pixel permutation.
        max_train: keep at most this many training images (10% of them
            are the validation split).
        max_test: keep at most this many test images.
        seed: seed of the split and of the permutation.

    Returns:
        `(x_train, y_train), (x_val, y_val), (x_test, y_test)`: float32
        (n, 784, 1) standardised with the training statistics, int32
        labels.
    """
    splits = load_sequential_mnist(
        "mnist", permuted, max_train=max_train, max_test=max_test, seed=seed
    )
    return splits["train"], splits["validation"], splits["test"]
