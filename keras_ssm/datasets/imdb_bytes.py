"""LRA Text: IMDB sentiment on bytes (length 1k or 4k).

Reviews come from the Large Movie Review Dataset (Maas et al., 2011),
downloaded from Stanford and checked against the archive's SHA-256. Each
review is encoded as its UTF-8 bytes, id = byte + 1 (0 is padding), and
truncated or padded to `length` (LRA: 1000; 4000 in the longer variant).
"""

import os

import numpy as np

from keras_ssm.datasets import lra_files as download
from keras_ssm.utils.validation import check_fraction
from keras_ssm.utils.validation import check_int

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
ARCHIVE = "aclImdb_v1.tar.gz"
SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
VOCAB_SIZE = 257  # 256 byte values + padding
NUM_CLASSES = 2


def encode_bytes(text, length):
    """UTF-8 bytes + 1, truncated / zero-padded to `length` (int32)."""
    data = np.frombuffer(text.encode("utf-8")[:length], dtype="uint8")
    ids = np.zeros((length,), dtype="int32")
    ids[: data.size] = data.astype("int32") + 1
    return ids


def read_imdb_directory(root, split, length):
    """Reads `root/<split>/{neg,pos}/*.txt` into (ids, labels)."""
    ids, labels = [], []
    for label, polarity in enumerate(("neg", "pos")):
        folder = os.path.join(root, split, polarity)
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"{folder} not found; expected the aclImdb layout "
                "(train|test)/(neg|pos)/*.txt."
            )
        for name in sorted(os.listdir(folder)):
            if name.endswith(".txt"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    ids.append(encode_bytes(f.read(), length))
                labels.append(label)
    if not ids:
        raise ValueError(
            f"{os.path.join(root, split)} holds no reviews (no .txt files "
            "under neg/ or pos/)."
        )
    return np.stack(ids), np.asarray(labels, dtype="int32")


def load_text(
    length=1000, validation_fraction=0.1, seed=0, url=URL, sha256=SHA256
):
    """IMDB byte-level splits, downloaded into the cache on first use.

    Args:
        length: tokens per review (1000 or 4000 in LRA).
        validation_fraction: part of the training reviews held out.
        seed: seed of the train/validation split.
        url: download URL (tests point it at a local stand-in archive).
        sha256: expected SHA-256 of the archive.

    Returns:
        `{"train": (x, y), "validation": (x, y), "test": (x, y)}`, int32.
    """
    length = check_int("length", length, minimum=1)
    root = download.fetch_extracted(
        url, ARCHIVE, "imdb", "aclImdb", marker="test", sha256=sha256
    )
    train = read_imdb_directory(root, "train", length)
    test = read_imdb_directory(root, "test", length)
    return split_validation(train, test, validation_fraction, seed)


def split_validation(train, test, validation_fraction, seed):
    """Holds out a seeded random part of `train` as the validation split."""
    validation_fraction = check_fraction(
        "validation_fraction", validation_fraction
    )
    seed = check_int("seed", seed, minimum=0)
    x, y = train
    order = np.random.default_rng(seed).permutation(len(y))
    num_val = int(round(len(y) * validation_fraction))
    val, keep = order[:num_val], order[num_val:]
    return {
        "train": (x[keep], y[keep]),
        "validation": (x[val], y[val]),
        "test": test,
    }


def load_data(max_length=4096, validation_fraction=0.1, seed=0):
    """IMDB reviews as byte ids (the LRA Text task), downloaded once.

    Looks for `aclImdb_v1.tar.gz` under `$KERAS_SSM_DATA/imdb/`, then in the
    cache, then downloads it (checked against its SHA-256).

    Args:
        max_length: bytes per review (padded or truncated; LRA: 4096).
        validation_fraction: part of the training reviews held out
            (seeded).
        seed: seed of the train/validation split.

    Returns:
        `(x_train, y_train), (x_val, y_val), (x_test, y_test)`: int32 ids
        (n, max_length), 0 padding and byte b as b + 1, and int32 labels.
    """
    max_length = check_int("max_length", max_length, minimum=1)
    splits = load_text(max_length, validation_fraction, seed)
    return splits["train"], splits["validation"], splits["test"]
