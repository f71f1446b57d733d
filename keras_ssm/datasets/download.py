"""Data files from the web: a cache, checksums and a clear offline error.

Shared by every loader of `keras_ssm.datasets`. Two directories are used,
neither of them inside the installed package or beside a checkout:

- `$KERAS_SSM_DATA` (unset by default): copies placed there by hand, e.g.
  on an offline machine;
- the cache, `$KERAS_SSM_CACHE`, by default `keras_ssm` under the Keras
  data-set directory (`$KERAS_HOME/datasets`, `~/.keras/datasets` when
  `KERAS_HOME` is unset), where downloads and generated data go.

`keras.utils.get_file` fetches each file into a private temporary
directory beside its target; the file is renamed to `target` only once its
checksum passes, so an interrupted or corrupt download never looks like a
cached file, and processes that fetch the same file at once do not write
into each other's copy. Files whose
publisher gives no checksum can be trusted on first use: the SHA-256 of the
first copy is written beside it (`<target>.sha256`) and later reads are
checked against it, so a truncated or changed file is still caught.
"""

import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile
import urllib.error

import keras

_ALGORITHM_NAMES = {"md5": "MD5", "sha256": "SHA-256"}


class DataUnavailableError(RuntimeError, FileNotFoundError):
    """A data file is neither local nor downloadable (e.g. offline).

    A `FileNotFoundError` too, so callers that catch missing files (the
    forecasting CLI) also catch a failed download.
    """


def data_dir():
    """Directory of hand-placed data files, if the user names one.

    Returns:
        `$KERAS_SSM_DATA` as an absolute path, or None when it is unset or
        empty (then only the cache and the downloads are used).
    """
    path = os.environ.get("KERAS_SSM_DATA")
    return os.path.abspath(os.path.expanduser(path)) if path else None


def local_copy(*parts):
    """`$KERAS_SSM_DATA/<parts...>` if that file or folder exists, else None.

    Args:
        *parts: the path under the data directory, e.g.
            `("fashion-mnist", "t10k-labels-idx1-ubyte.gz")`.
    """
    root = data_dir()
    if root is None:
        return None
    path = os.path.join(root, *parts)
    return path if os.path.exists(path) else None


def cache_dir(create=True):
    """Directory of downloaded and generated files.

    Args:
        create: create the directory when it is missing.

    Returns:
        `$KERAS_SSM_CACHE`, by default `keras_ssm` beside the
        `keras.datasets` downloads (`$KERAS_HOME/datasets/keras_ssm`,
        `~/.keras/datasets/keras_ssm` when `KERAS_HOME` is unset),
        absolute.
    """
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    default = os.path.join(keras_home, "datasets", "keras_ssm")
    path = os.environ.get("KERAS_SSM_CACHE") or default
    path = os.path.abspath(os.path.expanduser(path))
    if create:
        os.makedirs(path, exist_ok=True)
    return path


def file_digest(path, algorithm="sha256"):
    """Hex digest of a file, read in 1 MiB chunks.

    Args:
        path: the file.
        algorithm: a `hashlib` name, e.g. "sha256" or "md5".

    Returns:
        The lower-case hex digest.
    """
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path, md5=None, sha256=None, trust_first_use=False):
    """Checks a file against the given digests.

    Args:
        path: the file.
        md5: expected MD5 hex digest, or None.
        sha256: expected SHA-256 hex digest, or None.
        trust_first_use: with neither digest, record the file's SHA-256 in
            `<path>.sha256` the first time and check against it later.

    Raises:
        ValueError: when a digest does not match; the message names the
            file and both digests.
    """
    record = f"{path}.sha256"
    if md5 is None and sha256 is None and trust_first_use:
        if not os.path.exists(record):
            partial = private_partial(record)
            try:
                with open(partial, "w") as f:
                    f.write(f"{file_digest(path)}  {os.path.basename(path)}\n")
                os.replace(partial, record)
            except BaseException:
                _remove(partial)
                raise
            return
        with open(record) as f:
            sha256 = f.read().split()[0]
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        actual = file_digest(path, algorithm)
        if actual != expected.lower():
            raise ValueError(
                f"Checksum mismatch for {path}: its "
                f"{_ALGORITHM_NAMES[algorithm]} is {actual}, expected "
                f"{expected}. The file is corrupt or incomplete; delete it "
                "and download again."
            )


def download(url, target, md5=None, sha256=None, progress=False, hint=None):
    """Downloads `url` to `target` atomically, verifying its checksum.

    Args:
        url: the URL (`http(s)://` or `file://`).
        target: where the file ends up; its directory is created.
        md5: expected MD5 hex digest, or None.
        sha256: expected SHA-256 hex digest, or None.
        progress: show Keras's progress bar while downloading.
        hint: what to tell the user to do when the download fails (default:
            place a copy at `target` by hand).

    Returns:
        `target`.

    Raises:
        DataUnavailableError: when the URL cannot be read (offline, server
            error); the message names the URL and the manual fallback.
        ValueError: when the checksum does not match; nothing is kept.

    Example:

    ```python
    download("file:///tmp/a.csv", "/tmp/cache/a.csv")
    # '/tmp/cache/a.csv'
    ```
    """
    # A private directory beside `target`, so that the rename below stays on
    # one file system and concurrent fetches of one file do not collide.
    directory = os.path.dirname(os.path.abspath(target))
    os.makedirs(directory, exist_ok=True)
    partial_dir = tempfile.mkdtemp(
        prefix=os.path.basename(target) + ".", suffix=".part", dir=directory
    )
    try:
        partial = _get_file(url, partial_dir, md5, sha256, progress)
        verify_checksum(partial, md5=md5, sha256=sha256)
        os.replace(partial, target)
    except _FetchError as error:
        hint = hint or f"Download it by hand and place it at {target}."
        raise DataUnavailableError(
            f"Could not download {url} ({error}). Are you offline? {hint}"
        ) from None
    finally:
        shutil.rmtree(partial_dir, ignore_errors=True)
    return target


def cached_download(
    url,
    target,
    md5=None,
    sha256=None,
    trust_first_use=False,
    progress=False,
    hint=None,
):
    """`target` if it is there and valid, else downloads it first.

    Args:
        url: where to download from when `target` is missing.
        target: the cache path of the file.
        md5: expected MD5 hex digest, or None.
        sha256: expected SHA-256 hex digest, or None.
        trust_first_use: with neither digest, record and later check the
            SHA-256 of the first copy (see `verify_checksum`).
        progress: show Keras's progress bar while downloading.
        hint: the manual fallback named by the offline error.

    Returns:
        `target`, verified.

    Raises:
        DataUnavailableError: when `target` is missing and the download
            fails.
        ValueError: when the cached or downloaded file fails its checksum.

    Example:

    ```python
    path = cached_download(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        os.path.join(cache_dir(), "cifar10", "cifar-10-python.tar.gz"),
        md5="c58f30108f718f92721af3b95e74349a")
    ```
    """
    if os.path.exists(target):
        verify_checksum(target, md5, sha256, trust_first_use=trust_first_use)
        return target
    download(url, target, md5, sha256, progress=progress, hint=hint)
    if trust_first_use and md5 is None and sha256 is None:
        verify_checksum(target, trust_first_use=True)  # records the digest
    return target


class _FetchError(Exception):
    """The URL could not be read (offline, server error, unreadable file)."""


def _get_file(url, directory, md5, sha256, progress):
    """Fetches `url` into `directory` with `keras.utils.get_file`.

    `get_file` checks the strongest digest given; `verify_checksum` then
    checks both and names the file. Its network errors come as bare
    `Exception`s, turned into `_FetchError` here.
    """
    name = "download"
    expected = sha256 or md5
    algorithm = "sha256" if sha256 else "md5"
    logging = contextlib.nullcontext() if progress else _quiet_keras_logging()
    try:
        with logging:
            return keras.utils.get_file(
                fname=name,
                origin=url,
                file_hash=expected,
                hash_algorithm=algorithm,
                cache_dir=directory,
                cache_subdir="",
            )
    except ValueError:
        path = os.path.join(directory, name)
        if os.path.exists(path):  # get_file's own checksum error
            verify_checksum(path, md5=md5, sha256=sha256)
        raise
    except (urllib.error.URLError, OSError) as error:
        raise _FetchError(error) from None
    except Exception as error:
        # get_file re-raises HTTP and URL errors as bare `Exception`s;
        # anything more specific is a bug to let through.
        if type(error) is not Exception:
            raise
        raise _FetchError(error) from None


@contextlib.contextmanager
def _quiet_keras_logging():
    """No "Downloading data from" line or progress bar from `get_file`."""
    enabled = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    try:
        yield
    finally:
        if enabled:
            keras.config.enable_interactive_logging()


def private_partial(target, suffix=".part"):
    """A new, empty file beside `target` that only its caller writes.

    Write there, then `os.replace` it onto `target`: processes that make the
    same file at once each write their own copy, and the last atomic rename
    wins. The directory of `target` is created.

    Args:
        target: the file to be written.
        suffix: the temporary file's ending (".npz" for `np.savez`).

    Returns:
        The temporary file's path, `<target>.<random><suffix>`.
    """
    directory = os.path.dirname(os.path.abspath(target))
    os.makedirs(directory, exist_ok=True)
    while True:
        partial = os.path.join(
            directory,
            f"{os.path.basename(target)}.{secrets.token_hex(6)}{suffix}",
        )
        try:
            # O_EXCL: the name is this caller's alone. Mode 0o666 as for
            # any new file: the umask and the directory's default ACL
            # decide who may read it (a shared cache stays shared).
            descriptor = os.open(
                partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666
            )
        except FileExistsError:
            continue
        os.close(descriptor)
        return partial


def _remove(path):
    if os.path.exists(path):
        os.remove(path)
