"""LRA Retrieval: do two ACL Anthology papers cite each other? (bytes, 4k)

The AAN pairs exist only in the LRA release archive
(`lra_release/tsv_data/new_aan_pairs.{train,eval,test}.tsv`: label, two
paper ids, two texts, tab-separated, no header). The archive is large and
its publisher lists no checksum, so `fetch` records its SHA-256 on first
download and checks it afterwards. Each text is encoded like LRA Text:
UTF-8 bytes + 1, 0 padding, `length` (LRA: 4000) per document.
"""

import csv
import os
import sys

import numpy as np

from keras_ssm.datasets import lra_files as download
from keras_ssm.datasets.imdb_bytes import encode_bytes
from keras_ssm.utils.validation import check_class_labels

RELEASE_URL = "https://storage.googleapis.com/long-range-arena/lra_release.gz"
RELEASE_ARCHIVE = "lra_release.gz"
VOCAB_SIZE = 257
NUM_CLASSES = 2
SPLIT_FILES = {"train": "train", "validation": "eval", "test": "test"}


def read_pairs_tsv(path, length=4000, max_examples=None):
    """Reads an AAN pairs TSV into ((x1, x2), labels)."""
    csv.field_size_limit(sys.maxsize)
    first, second, labels = [], [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 5:
                raise ValueError(
                    f"{path}: expected 5 tab-separated fields (label, id1, "
                    f"id2, text1, text2); got {len(row)}."
                )
            labels.append(int(float(row[0])))
            first.append(encode_bytes(row[3], length))
            second.append(encode_bytes(row[4], length))
            if max_examples is not None and len(labels) >= max_examples:
                break
    if not labels:
        raise ValueError(f"{path} holds no document pairs.")
    labels = np.asarray(labels, "int32")
    check_class_labels(f"The labels of {path}", labels, NUM_CLASSES)
    return (np.stack(first), np.stack(second)), labels


def load_retrieval(length=4000, directory=None, max_examples=None):
    """AAN retrieval splits from a release directory or the LRA archive.

    Args:
        length: bytes per document (LRA: 4000).
        directory: a directory holding `new_aan_pairs.*.tsv`; by default
            `$KERAS_SSM_DATA/lra_release/lra_release/tsv_data`, or the
            downloaded and extracted release.
        max_examples: read at most this many pairs per split.

    Returns:
        `{"train": ((x1, x2), y), "validation": ..., "test": ...}`.
    """
    if directory is None:
        directory = release_directory("tsv_data")
    return {
        split: read_pairs_tsv(
            os.path.join(directory, f"new_aan_pairs.{name}.tsv"),
            length,
            max_examples,
        )
        for split, name in SPLIT_FILES.items()
    }


def release_directory(subdir, url=RELEASE_URL):
    """`lra_release/<subdir>` from $KERAS_SSM_DATA, or the download.

    The release archive (about 7 GB) is fetched and extracted into the
    cache only when no local copy exists.
    """
    local = download.local_copy("lra_release", "lra_release", subdir)
    if local is not None and os.path.isdir(local):
        return local
    root = download.fetch_extracted(
        url, RELEASE_ARCHIVE, "lra_release", "lra_release"
    )
    return os.path.join(root, subdir)


def load_data(max_length=4000, directory=None):
    """AAN citation pairs (the LRA Retrieval task) as byte ids.

    Args:
        max_length: bytes per document (LRA: 4000).
        directory: the release's `tsv_data` folder; default: the LRA
            release archive from `$KERAS_SSM_DATA/lra_release/`, the cache
            or the download.

    Returns:
        `(x_train, y_train), (x_val, y_val), (x_test, y_test)` where each
        x is a pair `(documents_1, documents_2)` of int32 ids
        (n, max_length) and y the int32 labels (1: one cites the other).
    """
    splits = load_retrieval(length=max_length, directory=directory)
    return splits["train"], splits["validation"], splits["test"]
