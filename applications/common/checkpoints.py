"""The callbacks of a run: checkpoints, resume state, history, epoch time.

Every file is written through `run_files.atomic_path`: an interrupted run
keeps its previous `best.keras`, `last.keras`, backup and progress. A
damaged backup is reported as one `CorruptedFileError` naming the folder
and what to do.
"""

import atexit
import json
import os
import shutil
import tempfile
import time

import keras

from applications.common.errors import CorruptedFileError
from applications.common.errors import one_line
from applications.common.results import read_json
from applications.common.results import write_json
from applications.common.run_files import RunPaths
from applications.common.run_files import atomic_path
from applications.common.run_files import commit
from applications.common.run_files import discard
from applications.common.run_files import new_partial
from applications.common.run_files import write_text


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` (wall time of the epoch) to the logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` that never leaves half a file.

    The model is saved to a temporary `.keras` file beside `filepath` and
    renamed onto it. Only a fixed `filepath` (no `{epoch}` fields).

    Args:
        filepath: the `.keras` file.
        **kwargs: the arguments of `ModelCheckpoint`; a resumed run passes
            its best value so far as `initial_value_threshold`, so that
            only a better epoch replaces the best model.
    """

    def _save_model(self, epoch, batch, logs):
        target = self.filepath
        partial = new_partial(target, suffix=".keras")
        self.filepath = partial
        try:
            super()._save_model(epoch, batch, logs)
        except BaseException:
            discard(partial)
            raise
        finally:
            self.filepath = target
        if os.path.getsize(partial):
            commit(partial, target)
        else:  # not an improvement: nothing was saved
            discard(partial)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` with atomic writes and clear errors.

    The weights and the epoch counter are each written to a temporary name
    and renamed. A backup that cannot be read raises `CorruptedFileError`
    naming the folder.
    """

    def on_train_begin(self, logs=None):
        try:
            self._load_model()
        except Exception as error:
            raise CorruptedFileError(
                f"the resume state in {self.backup_dir} cannot be read "
                f"({one_line(error)}); delete that folder to start from "
                "the last checkpoint's epoch 0, or run without --resume."
            ) from error

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        with atomic_path(self._weights_path, suffix=".weights.h5") as partial:
            self.model.save_weights(partial, overwrite=True)
        write_text(
            self._training_metadata_path,
            json.dumps(
                {"epoch": self._current_epoch, "batch": self._last_batch_seen}
            ),
        )


def backup_epoch(paths):
    """The number of epochs the backup in `paths` has finished (0: none)."""
    metadata = os.path.join(paths.backup_dir, "training_metadata.json")
    if not os.path.exists(metadata):
        return 0
    try:
        return int(read_json(metadata)["epoch"])
    except (CorruptedFileError, KeyError, TypeError, ValueError):
        raise CorruptedFileError(
            f"{metadata} is damaged; delete {paths.backup_dir} to start "
            "again, or run without --resume."
        ) from None


class RunProgress(keras.callbacks.Callback):
    """Keeps the whole history and training time in `paths.progress`.

    After each epoch the metrics of every epoch so far (those of earlier,
    interrupted runs included) and the total training time are written, so
    that a resumed run reports the run as a whole.

    Args:
        path: the progress JSON file.
        history: the history of the earlier runs (metric -> list).
        seconds: their training time.
    """

    def __init__(self, path, history=None, seconds=0.0):
        super().__init__()
        self.path = path
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.base_seconds = float(seconds)
        self.seconds = float(seconds)
        self._start = time.perf_counter()

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def elapsed(self):
        """The total training time so far, earlier runs included."""
        return self.base_seconds + time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            self.history.setdefault(key, []).append(value)
        self._write()

    def on_train_end(self, logs=None):
        self._write()  # the time after the last epoch counts too

    def _write(self):
        self.seconds = self.elapsed()
        write_json(
            self.path,
            {
                "epochs": len(self.history.get("loss", [])),
                "history": self.history,
                "train_seconds": self.seconds,
            },
        )


def earlier_progress(paths):
    """`(history, seconds)` of the epochs the backup in `paths` holds."""
    epochs = backup_epoch(paths)
    if epochs == 0 or not os.path.exists(paths.progress):
        return {}, 0.0
    progress = read_json(paths.progress)
    history = {
        key: list(values)[:epochs]
        for key, values in progress.get("history", {}).items()
    }
    return history, float(progress.get("train_seconds", 0.0))


def best_value(history, monitor, mode):
    """The best value of `monitor` in `history`, or None."""
    values = [v for v in history.get(monitor, []) if v == v]
    if not values:
        return None
    if mode == "auto":
        mode = "max" if "acc" in monitor or "auc" in monitor else "min"
    return max(values) if mode == "max" else min(values)


def _private_paths(paths, resume):
    """Throwaway run files for a process other than the chief.

    Saving can involve collectives (JAX and TensorFlow variables that span
    processes), so every process saves in step, but only the chief into the
    run directory. A resumed run copies the chief's resume state first, so
    that every process restarts from the same epoch.
    """
    private = RunPaths(tempfile.mkdtemp(prefix="keras_ssm_worker_"))
    atexit.register(shutil.rmtree, private.output_dir, ignore_errors=True)
    if resume and paths.can_resume():
        shutil.copytree(paths.backup_dir, private.backup_dir)
        if os.path.exists(paths.progress):
            shutil.copy(paths.progress, private.progress)
    return private


def start_afresh(paths):
    """Removes an earlier run's resume state, progress and result."""
    if os.path.isdir(paths.backup_dir):
        shutil.rmtree(paths.backup_dir)
    for path in (paths.progress, paths.result):
        if os.path.exists(path):
            os.remove(path)


def training_callbacks(
    paths,
    resume=False,
    monitor="val_loss",
    mode="auto",
    save_models=True,
):
    """Callbacks for checkpoints, CSV history, resume and epoch wall time.

    Resume uses `AtomicBackupAndRestore`: after each epoch it saves the
    weights, the optimizer state and the epoch number under
    `paths.backup_dir`; a later run with `resume=True` starts after the last
    finished epoch, adds to the earlier history and time (`RunProgress`),
    and replaces `best.keras` only with an epoch better than the earlier
    best. Without `resume`, an earlier run's state is removed so that the
    run starts from scratch, and the CSV history is overwritten. In a
    multi-process run, only process 0 writes into `paths`; the others write
    the same files into a temporary directory.

    Args:
        paths: a `RunPaths`.
        resume: continue from `paths.backup_dir` if it holds a state.
        monitor: metric that selects `best.keras`.
        mode: `"min"`, `"max"` or `"auto"` for `monitor`.
        save_models: also save `best.keras` and `last.keras` (full models).

    Returns:
        A list of Keras callbacks, the last one the `RunProgress`; the epoch
        timer comes first so that `epoch_seconds` reaches the history.
    """
    from keras_ssm import distribute

    if not distribute.is_chief():
        paths = _private_paths(paths, resume)
    if not resume:
        start_afresh(paths)
    history, seconds = earlier_progress(paths) if resume else ({}, 0.0)
    callbacks = [
        EpochTimer(),
        AtomicBackupAndRestore(paths.backup_dir, delete_checkpoint=False),
        keras.callbacks.CSVLogger(
            paths.history, append=bool(resume) and os.path.exists(paths.history)
        ),
    ]
    if save_models:
        best = best_value(history, monitor, mode)
        if best is None or not os.path.exists(paths.best_model):
            best = None
        callbacks += [
            AtomicModelCheckpoint(
                paths.best_model,
                monitor=monitor,
                mode=mode,
                save_best_only=True,
                initial_value_threshold=best,
                verbose=0,
            ),
            AtomicModelCheckpoint(paths.last_model, verbose=0),
        ]
    callbacks.append(RunProgress(paths.progress, history, seconds))
    return callbacks
