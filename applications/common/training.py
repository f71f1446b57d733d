"""Training plumbing shared by the application command lines.

Both `python -m applications.lra` and the forecasting CLI use these pieces so
that every application behaves the same way:

- `select_backend(argv)`: reads `--backend` from the command line and sets
  `KERAS_BACKEND` *before* Keras is imported (the backend is fixed per
  process). Call it at the very top of `__main__`, then import Keras.
- `add_training_arguments(parser)`: the common options (`--backend`,
  `--epochs`, `--batch-size`, `--output-dir`, `--resume`, `--seed`,
  `--data-parallel`, `--steps-per-epoch`, `--verbose`).
- `RunPaths(output_dir)`: where a run keeps its files (best and last model,
  CSV history, resume state, JSON result).
- `training_callbacks(paths, resume=...)`: checkpoints, CSV history, resume
  from the last finished epoch, per-epoch wall time.
- `fit(model, train_data, ...)`: `model.fit` with those callbacks; returns
  the history dict and the wall time.
- `data_parallel_scope(enabled)`: the `applications.common.distribute`
  context manager, or a no-op when data parallelism is off.
- `write_result(path, result)`: a JSON result with run metadata (backend,
  versions, UTC time).

Example:

>>> from applications.common import training
>>> training.select_backend()  # before `import keras`
>>> import keras
>>> parser = argparse.ArgumentParser()
>>> training.add_training_arguments(parser)
>>> args = parser.parse_args()
>>> paths = training.RunPaths(args.output_dir)
>>> with training.data_parallel_scope(args.data_parallel):
...     model = build_model()
...     model.compile(...)
...     history, seconds = training.fit(
...         model, train, validation_data=val, epochs=args.epochs,
...         paths=paths, resume=args.resume)
>>> training.write_result(paths.result, {"test_accuracy": 0.9})
"""

import argparse
import atexit
import contextlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime
from datetime import timezone

BACKENDS = ("jax", "tensorflow", "torch")


# A log level the user chose; without one the CLIs hide TensorFlow's
# start-up logs.
_USER_TF_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")


def quiet_tensorflow():
    """Hides TensorFlow's C++ logs (CUDA probing on CPU machines) by default.

    Only a default: a `TF_CPP_MIN_LOG_LEVEL` the user set is kept. Must run
    before TensorFlow is imported (the applications call it on import).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


quiet_tensorflow()


def import_keras_quietly():
    """Imports Keras and keras-hub with their C++ start-up notices hidden.

    TensorFlow (the backend, or imported by keras-hub) writes its oneDNN
    notice and CUDA probing messages to the process's stderr before its
    log level applies. Unless the user set `TF_CPP_MIN_LOG_LEVEL`, stderr
    is captured during the import and shown only if the import fails.
    """
    if _USER_TF_LOG_LEVEL is not None or "keras_hub" in sys.modules:
        import keras  # noqa: F401

        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401

            try:
                import keras_hub  # noqa: F401
            except ImportError:
                pass
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _number(text, kind):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got "
            f"{text!r}"
        ) from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"expected a finite number, got {text!r}"
        )
    return value


def positive_int(text):
    """argparse type: an integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def nonnegative_int(text):
    """argparse type: an integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def finite_float(text):
    """argparse type: a finite float (no nan or inf)."""
    return _number(text, float)


def positive_float(text):
    """argparse type: a finite float > 0."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def nonnegative_float(text):
    """argparse type: a finite float >= 0."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def rate(text):
    """argparse type: a dropout rate in [0, 1)."""
    value = _number(text, float)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; the run was stopped."""


def exit_on_divergence(main, argv=None):
    """Runs a CLI `main`; a diverged run exits with status 1 and a message."""
    try:
        return main(argv)
    except TrainingDivergedError as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(1)


def _backend_from_argv(argv):
    """The value of `--backend X` / `--backend=X` in `argv`, or None."""
    for i, arg in enumerate(argv):
        if arg == "--backend":
            if i + 1 >= len(argv):
                raise ValueError(
                    f"`--backend` needs a value, one of {BACKENDS}."
                )
            return argv[i + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return None


def select_backend(argv=None, default=None):
    """Sets `KERAS_BACKEND` from `--backend` before Keras is imported.

    Precedence: `--backend` on the command line, then the `KERAS_BACKEND`
    environment variable, then `default`, then Keras' own default.

    Under the torch backend torch is imported first: importing TensorFlow
    (which keras-hub does) before torch crashes some builds.

    Args:
        argv: the command-line arguments (defaults to `sys.argv[1:]`).
        default: backend to use when neither the flag nor the environment
            variable names one.

    Returns:
        The backend name that Keras will use (or None for Keras' default).

    Raises:
        ValueError: for an unknown backend name.
        RuntimeError: when Keras is already imported with another backend.

    Example:

    >>> select_backend(["--backend", "torch"])
    'torch'
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    name = (
        _backend_from_argv(argv) or os.environ.get("KERAS_BACKEND") or default
    )
    if name is None:
        import_keras_quietly()
        return None
    if name not in BACKENDS:
        raise ValueError(
            f"`--backend` must be one of {BACKENDS}; got {name!r}."
        )
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise RuntimeError(
                f"Keras is already imported with the {current!r} backend; "
                f"the backend {name!r} must be selected before importing "
                "keras (the backend is fixed per process)."
            )
    os.environ["KERAS_BACKEND"] = name
    if name == "torch":
        import torch  # noqa: F401  (before any TensorFlow import)
    import_keras_quietly()
    return name


def add_training_arguments(parser, epochs=None, batch_size=None):
    """Adds the options shared by every application CLI to `parser`.

    Options: `--backend`, `--epochs`, `--batch-size`, `--output-dir`,
    `--resume`, `--seed`, `--data-parallel`, `--num-devices`,
    `--steps-per-epoch`, `--verbose`. `None` for `--epochs` and
    `--batch-size` means "use the preset's value".

    Args:
        parser: an `argparse.ArgumentParser`.
        epochs: default of `--epochs` (None: the preset's).
        batch_size: default of `--batch-size` (None: the preset's).

    Returns:
        The parser, for chaining.
    """
    group = parser.add_argument_group("training")
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="Keras backend (default: $KERAS_BACKEND or Keras' default).",
    )
    group.add_argument("--epochs", type=positive_int, default=epochs)
    group.add_argument("--batch-size", type=positive_int, default=batch_size)
    group.add_argument(
        "--output-dir",
        default=None,
        help="Directory of checkpoints, history.csv and result.json.",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="Continue from the last finished epoch saved in --output-dir.",
    )
    group.add_argument("--seed", type=int, default=0)
    group.add_argument(
        "--data-parallel",
        action="store_true",
        help="Replicate the model on all local devices and split batches "
        "(keras.distribution under JAX, MirroredStrategy under TF), or "
        "over all processes of a torchrun / JAX_* / TF_CONFIG launch.",
    )
    group.add_argument(
        "--num-devices",
        type=positive_int,
        default=None,
        help="Devices for --data-parallel (default: all).",
    )
    group.add_argument(
        "--steps-per-epoch",
        type=positive_int,
        default=None,
        help="Limit each epoch to this many batches (quick runs).",
    )
    group.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=(0, 1, 2),
        help="Keras fit verbosity: 0 silent, 1 progress bar, 2 one line "
        "per epoch.",
    )
    return parser


class RunPaths:
    """The files of one training run, all under `output_dir`.

    Attributes:
        output_dir: the run directory (created).
        best_model: `best.keras`, the model with the best monitored value.
        last_model: `last.keras`, the model after the last finished epoch.
        history: `history.csv`, one row of metrics per epoch.
        backup_dir: `backup/`, the resume state (weights, optimizer, epoch).
        result: `result.json`, the final result.

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
        self.result = os.path.join(self.output_dir, "result.json")

    def can_resume(self):
        """True when a resume state from an earlier run exists."""
        return os.path.isdir(self.backup_dir) and bool(
            os.listdir(self.backup_dir)
        )


def _epoch_timer_class():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Adds `epoch_seconds` (wall time of the epoch) to the logs."""

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["epoch_seconds"] = time.perf_counter() - self._start

    return EpochTimer


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
    return private


def training_callbacks(
    paths,
    resume=False,
    monitor="val_loss",
    mode="auto",
    save_models=True,
):
    """Callbacks for checkpoints, CSV history, resume and epoch wall time.

    Resume uses `keras.callbacks.BackupAndRestore`: after each epoch it saves
    the weights, the optimizer state and the epoch number under
    `paths.backup_dir`; a later run with `resume=True` starts after the last
    finished epoch. Without `resume`, an old backup is removed so that the
    run starts from scratch, and the CSV history is overwritten. In a
    multi-process run, only process 0 writes into `paths`; the others write
    the same files into a temporary directory (see `_private_paths`).

    Args:
        paths: a `RunPaths`.
        resume: continue from `paths.backup_dir` if it holds a state.
        monitor: metric that selects `best.keras` (`"val_loss"` default;
            it falls back to `"loss"` when there is no validation data).
        mode: `"min"`, `"max"` or `"auto"` for `monitor`.
        save_models: also save `best.keras` and `last.keras` (full models).

    Returns:
        A list of Keras callbacks; the epoch timer comes before the CSV
        logger so that `epoch_seconds` is written to the history.
    """
    import keras

    from keras_ssm import distribute

    if not distribute.is_chief():
        paths = _private_paths(paths, resume)
    if not resume and os.path.isdir(paths.backup_dir):
        shutil.rmtree(paths.backup_dir)
    callbacks = [
        _epoch_timer_class()(),
        keras.callbacks.BackupAndRestore(
            paths.backup_dir, delete_checkpoint=False
        ),
        keras.callbacks.CSVLogger(
            paths.history, append=bool(resume) and os.path.exists(paths.history)
        ),
    ]
    if save_models:
        callbacks += [
            keras.callbacks.ModelCheckpoint(
                paths.best_model,
                monitor=monitor,
                mode=mode,
                save_best_only=True,
                verbose=0,
            ),
            keras.callbacks.ModelCheckpoint(paths.last_model, verbose=0),
        ]
    return callbacks


def fit(
    model,
    train_data,
    validation_data=None,
    epochs=1,
    paths=None,
    resume=False,
    steps_per_epoch=None,
    verbose=1,
    monitor=None,
    mode="auto",
    callbacks=(),
    **fit_kwargs,
):
    """`model.fit` with the shared callbacks; returns (history, seconds).

    Args:
        model: a compiled Keras model.
        train_data: anything `model.fit` accepts as `x` (a `PyDataset`,
            a `tf.data.Dataset`, a tuple of arrays given as `(x, y)`).
        validation_data: optional validation data for `model.fit`.
        epochs: total number of epochs (a resumed run trains the rest).
        paths: a `RunPaths`; None trains without checkpoints or history.
        resume: continue from the backup in `paths` (see
            `training_callbacks`).
        steps_per_epoch: optional cap on batches per epoch.
        verbose: Keras fit verbosity (1 is the progress bar).
        monitor: metric of `best.keras`; defaults to `"val_loss"` with
            validation data and `"loss"` without.
        mode: `"min"`, `"max"` or `"auto"` for `monitor`.
        callbacks: extra callbacks, run after the shared ones.
        **fit_kwargs: other `model.fit` arguments (`class_weight`, ...).

    Returns:
        `(history, seconds)`: the `History.history` dict (epoch -> metric
        lists, only the epochs run in this process) and the wall time of
        `fit` in seconds.

    Raises:
        TrainingDivergedError: when the loss became NaN or infinite
            (`keras.callbacks.TerminateOnNaN` stopped the run).
    """
    from keras_ssm import distribute

    if monitor is None:
        monitor = "val_loss" if validation_data is not None else "loss"
    # Across processes: each feeds its part of the global batches, and
    # only the chief shows progress.
    distribute.prepare_model(model)
    if not distribute.is_chief():
        verbose = 0
    all_callbacks = []
    if paths is not None:
        all_callbacks += training_callbacks(
            paths, resume=resume, monitor=monitor, mode=mode
        )
    all_callbacks += list(callbacks)
    import keras

    all_callbacks.append(keras.callbacks.TerminateOnNaN())
    x, y = train_data, None
    if isinstance(train_data, tuple) and len(train_data) == 2:
        x, y = train_data
    start = time.perf_counter()
    history = model.fit(
        x,
        y,
        validation_data=validation_data,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=all_callbacks,
        verbose=verbose,
        **fit_kwargs,
    )
    seconds = time.perf_counter() - start
    losses = history.history.get("loss", [])
    if not all(math.isfinite(float(v)) for v in losses):
        raise TrainingDivergedError(
            "the training loss became NaN or infinite (epoch "
            f"{len(losses)}); training stopped. Try a smaller "
            "--learning-rate."
        )
    return dict(history.history), seconds


def data_parallel_scope(enabled=False, num_devices=None):
    """Context manager for `--data-parallel`: build, compile and fit inside.

    Delegates to `keras_ssm.distribute.data_parallel_scope` when `enabled`:
    all local devices in one process, or every process of a run started by
    torchrun (PyTorch), with `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`
    and `JAX_PROCESS_ID` (JAX) or with `TF_CONFIG` (TensorFlow). A no-op
    context otherwise.

    Args:
        enabled: whether to replicate the model across devices.
        num_devices: number of devices (None: all local devices).

    Returns:
        A context manager.
    """
    from keras_ssm import distribute

    if not enabled:
        if distribute.process_count() > 1:
            raise ValueError(
                f"This process is one of {distribute.process_count()} "
                "started by a multi-process launcher (torchrun, JAX_* "
                "variables or TF_CONFIG); add --data-parallel so that they "
                "train one model together."
            )
        return contextlib.nullcontext()
    return distribute.data_parallel_scope(enabled=True, num_devices=num_devices)


def is_chief():
    """True in the process that writes results (always, when alone)."""
    from keras_ssm import distribute

    return distribute.is_chief()


def _json_safe(value):
    """NumPy scalars/arrays and other odd types to plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return _json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def run_metadata():
    """Backend, library versions, Python, platform and UTC time of a run."""
    import keras

    return {
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_result(path, result):
    """Writes `result` plus `run_metadata()` to `path` as indented JSON.

    In a multi-process run only process 0 writes.

    The file is written to a temporary name and renamed, so a reader never
    sees half a file.

    Args:
        path: the JSON file (its directory is created).
        result: a dict of results (metrics, arguments, timings).

    Returns:
        The dict that was written.
    """
    from keras_ssm import distribute

    payload = {**_json_safe(dict(result)), "metadata": run_metadata()}
    if not distribute.is_chief():
        return payload  # only process 0 of a multi-process run writes
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return payload


def format_seconds(seconds):
    """`"1h 02m 03s"`-style duration for log lines."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
