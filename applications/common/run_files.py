"""Where a run keeps its files, and how each one is written.

Every file goes to a temporary name beside its target and is renamed onto
it (`os.replace`, atomic on POSIX), so that an interrupted write leaves the
previous good file, or none, never half of one.
"""

import contextlib
import os

from applications.common.errors import UsageError

# The permissions a plain `open(path, "w")` would give (the temporary
# files start private).
_UMASK = os.umask(0)
os.umask(_UMASK)


def new_partial(target, suffix=None):
    """A new empty temporary file beside `target` (see `atomic_path`)."""
    from keras_ssm.datasets.download import private_partial

    if suffix is None:
        suffix = os.path.splitext(target)[1]
    return private_partial(target, suffix=suffix)


def commit(partial, target):
    """Renames the finished `partial` onto `target` (atomically)."""
    os.chmod(partial, 0o666 & ~_UMASK)
    os.replace(partial, target)


def discard(partial):
    """Removes an unfinished `partial`, if it is still there."""
    if os.path.exists(partial):
        os.remove(partial)


@contextlib.contextmanager
def atomic_path(target, suffix=None):
    """A temporary path to write; renamed onto `target` on success.

    Args:
        target: the file to (re)place; its directory is created.
        suffix: the temporary file's ending, for writers that check it
            (`".keras"`, `".weights.h5"`); default: `target`'s extension.

    Yields:
        The temporary path. If the block raises, it is removed and `target`
        is untouched.

    Example:

    >>> with atomic_path("runs/x/result.json") as partial:
    ...     with open(partial, "w") as f:
    ...         f.write("{}")
    """
    partial = new_partial(target, suffix)
    try:
        yield partial
        commit(partial, target)
    except BaseException:
        discard(partial)
        raise


def write_text(path, text):
    """Writes `text` to `path` through `atomic_path`."""
    with atomic_path(path) as partial:
        with open(partial, "w") as f:
            f.write(text)


def check_output_dir(path, argument="--output-dir"):
    """Creates `path` and checks that files can be written in it.

    Called before any data work, so that a bad directory fails at once.

    Args:
        path: the run directory.
        argument: the option that named it, for the error.

    Returns:
        `path`, as a string.

    Raises:
        UsageError: `path` is a file, lies under a file, or cannot be
            created or written; the message names `argument` and the path.
    """
    path = str(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(
            f"argument {argument}: {path!r} is a file, not a directory."
        )
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError(
            f"argument {argument}: {path!r} lies under the file {parent!r}."
        )
    try:
        os.makedirs(path, exist_ok=True)
        write_text(os.path.join(path, ".write_check"), "")
        os.remove(os.path.join(path, ".write_check"))
    except OSError as error:
        raise UsageError(
            f"argument {argument}: cannot write in {path!r} "
            f"({error.strerror or error})."
        ) from None
    return path


class RunPaths:
    """The files of one training run, all under `output_dir`.

    Attributes:
        output_dir: the run directory (created).
        best_model: `best.keras`, the model with the best monitored value.
        last_model: `last.keras`, the model after the last finished epoch.
        history: `history.csv`, one row of metrics per epoch.
        backup_dir: `backup/`, the resume state (weights, optimizer, epoch).
        progress: `progress.json`, the history and training time so far
            (what a resumed run adds to).
        result: `result.json`, the final result; its presence marks a
            finished run.

    Args:
        output_dir: the run directory; created if missing.

    Example:

    >>> paths = RunPaths("runs/listops-s4d")
    >>> paths.history
    'runs/listops-s4d/history.csv'
    """

    def __init__(self, output_dir):
        self.output_dir = str(output_dir)
        os.makedirs(self.output_dir, exist_ok=True)
        self.best_model = os.path.join(self.output_dir, "best.keras")
        self.last_model = os.path.join(self.output_dir, "last.keras")
        self.history = os.path.join(self.output_dir, "history.csv")
        self.backup_dir = os.path.join(self.output_dir, "backup")
        self.progress = os.path.join(self.output_dir, "progress.json")
        self.result = os.path.join(self.output_dir, "result.json")

    def can_resume(self):
        """True when a resume state from an earlier run exists."""
        return os.path.isdir(self.backup_dir) and bool(
            os.listdir(self.backup_dir)
        )

    def is_finished(self, epochs=None):
        """True when the run wrote its `result.json` after `epochs` epochs.

        Args:
            epochs: the epochs asked for now; a result of fewer epochs
                (`"epochs_run"`) is not finished, unless it stopped early
                (`"stopped_early"`). None: any result.
        """
        if not os.path.isfile(self.result):
            return False
        if epochs is None:
            return True
        from applications.common.results import read_json

        result = read_json(self.result)
        return bool(result.get("stopped_early")) or (
            result.get("epochs_run", 0) >= epochs
        )
