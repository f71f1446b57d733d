"""Where the forecasting CSVs come from: a local directory, a cache, or the web.

The ETT data (Electricity Transformer Temperature) is from Zhou et al.,
"Informer: Beyond Efficient Transformer for Long Sequence Time-Series
Forecasting" (AAAI 2021), published at https://github.com/zhouhaoyi/ETDataset
under CC BY-ND 4.0. The files are read as they are and never modified.

Lookup order for a data set `name` (e.g. "ETTh1"):

1. `data_dir` (the CLI's `--data-dir`): `<data_dir>/<name>.csv` or
   `<data_dir>/ETT-small/<name>.csv`;
2. the directory named by the environment variable `KERAS_SSM_DATA` (if
   set), with the same two layouts;
3. the download cache (`$KERAS_SSM_CACHE/forecasting`, by default
   `~/.keras/datasets/keras_ssm/forecasting`, or `cache_dir`), then the
   canonical
   download URL, if the data set has one and `download=True`. Files with a
   known SHA-256 are verified.
"""

import os

# Imported as a module: `resolve_csv` has arguments named `data_dir` and
# `download`.
from keras_ssm.datasets import download as common_download

ETDATASET_URL = (
    "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/"
)

# SHA-256 of the canonical files, computed from unmodified copies. ETTm1 and
# ETTm2 had no local copy to hash, so their downloads are not verified.
CHECKSUMS = {
    "ETTh1": "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
    "ETTh2": "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b",
    "ETTm1": None,
    "ETTm2": None,
}

# Hourly ("h") or 15-minute ("m") ETT sets use the Informer borders; the
# others ("custom": weather, electricity) the 70/10/20 split of Autoformer.
DATASET_KINDS = {
    "ETTh1": "ett_hour",
    "ETTh2": "ett_hour",
    "ETTm1": "ett_minute",
    "ETTm2": "ett_minute",
    "weather": "custom",
    "electricity": "custom",
}

CACHE_SUBDIR = "forecasting"


def default_data_root():
    """`$KERAS_SSM_DATA`, or None when it is unset."""
    return common_download.data_dir()


def dataset_kind(name):
    """ "ett_hour", "ett_minute" or "custom" for a data set name."""
    if name in DATASET_KINDS:
        return DATASET_KINDS[name]
    return "custom"


def sha256_of(path):
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    return common_download.file_digest(path, "sha256")


def _local_candidates(directory, name):
    return [
        os.path.join(directory, f"{name}.csv"),
        os.path.join(directory, "ETT-small", f"{name}.csv"),
    ]


def resolve_csv(name, data_dir=None, cache_dir=None, download=True):
    """Path of the CSV of data set `name`, downloading it if needed.

    Args:
        name: "ETTh1", "ETTh2", "ETTm1", "ETTm2", or the stem of any CSV of
            the same long format ("weather", "electricity", ...) found
            locally.
        data_dir: directory to look in first (CLI `--data-dir`).
        cache_dir: download cache (default `$KERAS_SSM_CACHE/forecasting`,
            the cache the LRA data also uses).
        download: allow fetching ETT files from the canonical URL.

    Returns:
        An existing file path.

    Raises:
        FileNotFoundError: if the file is nowhere locally and cannot be
            downloaded; the message lists every place that was tried.
        ValueError: if a cached or downloaded file fails its checksum.

    Example:

    ```python
    path = resolve_csv("ETTh1", data_dir="/data/ETT-small")
    ```
    """
    tried = []
    for directory in (data_dir, default_data_root()):
        if directory is None:
            continue
        for path in _local_candidates(directory, name):
            tried.append(path)
            if os.path.isfile(path):
                return path
    cache_dir = cache_dir or os.path.join(
        common_download.cache_dir(), CACHE_SUBDIR
    )
    cached = os.path.join(cache_dir, f"{name}.csv")
    tried.append(cached)
    if not os.path.isfile(cached):
        if name not in CHECKSUMS:
            raise FileNotFoundError(
                f"Data set {name!r} was not found; looked at {tried}. Only "
                f"the ETT sets {sorted(CHECKSUMS)} can be downloaded; put "
                f"{name}.csv in --data-dir or $KERAS_SSM_DATA."
            )
        if not download:
            raise FileNotFoundError(
                f"Data set {name!r} was not found (looked at {tried}) and "
                "downloading is disabled."
            )
    hint = (
        f"Data set {name!r} was not found locally (looked at {tried}). "
        "Pass --data-dir (or set KERAS_SSM_DATA) to a directory holding "
        f"{name}.csv."
    )
    return common_download.cached_download(
        ETDATASET_URL + f"{name}.csv",
        cached,
        sha256=CHECKSUMS.get(name),
        hint=hint,
    )
