"""LRA data files: a hand-placed copy, the cache, or a verified download.

Data files are looked up in this order:

1. `$KERAS_SSM_DATA/<subdir>/<filename>`, when that variable is set:
   copies a user placed there by hand, e.g. on an offline machine;
2. the cache, `$KERAS_SSM_CACHE/<subdir>/<filename>` (default
   `~/.keras/datasets/keras_ssm`);
3. the canonical URL, fetched into the cache by `keras.utils.get_file` and
   checked against the checksum its publisher gives (MD5 or SHA-256).

Where a source publishes no checksum (the LRA release archive), the SHA-256
of the first copy is recorded beside the file and later reads are checked
against it. The generic parts live in `keras_ssm.datasets.download`.
"""

import os
import shutil
import tarfile
import tempfile

from keras_ssm.datasets.download import DataUnavailableError  # noqa: F401
from keras_ssm.datasets.download import cache_dir
from keras_ssm.datasets.download import cached_download
from keras_ssm.datasets.download import data_dir
from keras_ssm.datasets.download import file_digest  # noqa: F401
from keras_ssm.datasets.download import local_copy
from keras_ssm.datasets.download import verify_checksum


def fetch(url, filename, subdir, md5=None, sha256=None, progress=True):
    """Returns a local, verified path of `filename`, downloading if needed.

    Args:
        url: canonical download URL (`file://` URLs work too).
        filename: the file's name in the data and cache directories.
        subdir: sub-directory under the data and cache directories.
        md5: the publisher's MD5, if it publishes one.
        sha256: the publisher's SHA-256, if it publishes one. With neither,
            the first copy's SHA-256 is recorded and checked later.
        progress: show Keras's progress bar while downloading.

    Returns:
        The path of the verified file.

    Raises:
        DataUnavailableError: when the file is not local and the download
            fails (no network, server error); the message says where to put
            a manual copy.
        ValueError: when a file's checksum does not match.

    Example:

    ```python
    path = fetch(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-python.tar.gz", "cifar10",
        md5="c58f30108f718f92721af3b95e74349a")
    ```
    """
    local = local_copy(subdir, filename)
    if local is not None:
        verify_checksum(local, md5, sha256, trust_first_use=True)
        return local
    cached = os.path.join(cache_dir(), subdir, filename)
    manual = os.path.join(data_dir() or "$KERAS_SSM_DATA", subdir, filename)
    hint = (
        f"Download {filename} by hand and place it at {cached} (the cache, "
        f"$KERAS_SSM_CACHE) or at {manual} (with $KERAS_SSM_DATA set)."
    )
    return cached_download(
        url,
        cached,
        md5=md5,
        sha256=sha256,
        trust_first_use=True,
        progress=progress,
        hint=hint,
    )


def extract_tar(archive, destination, marker):
    """Extracts a tar archive once; `marker` is a path that proves it.

    Args:
        archive: the `.tar`, `.tar.gz` or `.gz` tar archive.
        destination: directory to extract into.
        marker: relative path inside `destination` that exists once the
            archive is extracted (checked to skip repeated extraction).

    Returns:
        `destination`.
    """
    if os.path.exists(os.path.join(destination, marker)):
        return destination
    os.makedirs(destination, exist_ok=True)
    # A private directory per extraction, so that processes extracting the
    # same archive at once do not write into each other's files.
    tmp = tempfile.mkdtemp(
        prefix=os.path.basename(destination) + ".",
        suffix=".extracting",
        dir=os.path.dirname(os.path.abspath(destination)),
    )
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        for name in os.listdir(tmp):
            target = os.path.join(destination, name)
            if os.path.isdir(target):
                shutil.rmtree(target, ignore_errors=True)
            elif os.path.exists(target):
                os.remove(target)
            os.replace(os.path.join(tmp, name), target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not os.path.exists(os.path.join(destination, marker)):
        raise ValueError(
            f"{archive} did not contain the expected {marker!r}; is it the "
            "right archive?"
        )
    return destination


def fetch_extracted(
    url, filename, subdir, folder, *, marker=None, md5=None, sha256=None
):
    """`folder` of a tar archive, fetched with `fetch` and extracted once.

    The archive is extracted into `extracted/` beside it (in the data or
    cache directory that holds it).

    Args:
        url, filename, subdir: as for `fetch`.
        folder: the archive's top folder, e.g. "aclImdb".
        marker: a path inside `folder` whose presence shows that the archive
            was extracted (`extract_tar`); None: `folder` itself.
        md5, sha256: the archive's checksum, as for `fetch`.

    Returns:
        The path of the extracted `folder`.
    """
    archive = fetch(url, filename, subdir, md5=md5, sha256=sha256)
    root = extract_tar(
        archive,
        os.path.join(os.path.dirname(archive), "extracted"),
        folder if marker is None else os.path.join(folder, marker),
    )
    return os.path.join(root, folder)
