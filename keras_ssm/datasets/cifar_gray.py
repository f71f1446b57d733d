"""LRA Image: CIFAR-10 in grayscale as a sequence of 1024 pixels.

CIFAR-10 (Krizhevsky, 2009) is downloaded from the University of Toronto
and checked against the MD5 published there. Images are converted to
grayscale with the ITU-R BT.601 luma weights (0.2989 R + 0.5870 G +
0.1140 B, as `tf.image.rgb_to_grayscale` in LRA), flattened row by row to
(n, 1024, 1) and standardised with the training set's statistics.
"""

import os
import pickle

import numpy as np

from keras_ssm.datasets import lra_files as download
from keras_ssm.datasets.imdb_bytes import split_validation
from keras_ssm.utils.validation import check_class_labels

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
NUM_CLASSES = 10
LUMA = np.asarray([0.2989, 0.5870, 0.1140], dtype="float32")


def read_cifar_batch(path):
    """One pickled CIFAR-10 batch: uint8 (n, 32, 32, 3) and int32 labels."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype="uint8")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = np.asarray(batch[b"labels"], dtype="int32")
    if len(labels) != len(images):
        raise ValueError(
            f"{path} holds {len(images)} images but {len(labels)} labels."
        )
    check_class_labels(f"The labels of {path}", labels, NUM_CLASSES)
    return images, labels


def to_grayscale_sequences(images):
    """uint8 RGB (n, 32, 32, 3) to float32 grayscale (n, 1024, 1) in [0, 1]."""
    gray = images.astype("float32") @ LUMA / 255.0
    return gray.reshape(gray.shape[0], -1, 1)


def load_image(validation_fraction=0.1, seed=0, url=URL, md5=MD5):
    """CIFAR-10 grayscale splits, downloaded into the cache on first use.

    Args:
        validation_fraction: part of the training images held out.
        seed: seed of the train/validation split.
        url: download URL (tests point it at a local stand-in archive).
        md5: expected MD5 of the archive.

    Returns:
        `{"train": (x, y), "validation": (x, y), "test": (x, y)}` with
        float32 x of shape (n, 1024, 1).
    """
    root = download.fetch_extracted(
        url,
        ARCHIVE,
        "cifar10",
        "cifar-10-batches-py",
        marker="test_batch",
        md5=md5,
    )
    parts = [
        read_cifar_batch(os.path.join(root, f"data_batch_{i}"))
        for i in range(1, 6)
    ]
    train = (
        to_grayscale_sequences(np.concatenate([p[0] for p in parts])),
        np.concatenate([p[1] for p in parts]),
    )
    test_images, test_labels = read_cifar_batch(
        os.path.join(root, "test_batch")
    )
    test = (to_grayscale_sequences(test_images), test_labels)
    splits = split_validation(train, test, validation_fraction, seed)
    mean = float(splits["train"][0].mean())
    std = float(splits["train"][0].std()) + 1e-6
    return {k: ((x - mean) / std, y) for k, (x, y) in splits.items()}


def load_data(validation_fraction=0.1, seed=0):
    """CIFAR-10 as grayscale pixel sequences (the LRA Image task).

    Args:
        validation_fraction: part of the training images held out
            (seeded).
        seed: seed of the train/validation split.

    Returns:
        `(x_train, y_train), (x_val, y_val), (x_test, y_test)`: float32
        sequences (n, 1024, 1) and int32 labels.
    """
    splits = load_image(validation_fraction, seed)
    return splits["train"], splits["validation"], splits["test"]
