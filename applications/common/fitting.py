"""`fit`: one training run with the shared callbacks, resumable."""

import math
import time

from applications.common.errors import TrainingDivergedError


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
    stop_on_nan=True,
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
            `checkpoints.training_callbacks`).
        steps_per_epoch: optional cap on batches per epoch.
        verbose: Keras fit verbosity (1 is the progress bar); only process
            0 of a multi-process run shows progress.
        monitor: metric of `best.keras`; defaults to `"val_loss"` with
            validation data and `"loss"` without.
        mode: `"min"`, `"max"` or `"auto"` for `monitor`.
        callbacks: extra callbacks, run after the shared ones.
        stop_on_nan: stop at a NaN or infinite loss and raise
            `TrainingDivergedError` (the experiments, which record a
            diverged run as such, turn it off).
        **fit_kwargs: other `model.fit` arguments (`class_weight`, ...).

    Returns:
        `(history, seconds)`: the history dict (metric -> one value per
        epoch) and the training wall time in seconds, both of the whole run:
        a resumed run includes the epochs and time of the runs before it.

    Raises:
        TrainingDivergedError: when the loss became NaN or infinite
            (`keras.callbacks.TerminateOnNaN` stopped the run).

    Example:

        history, seconds = fit(model, (x, y), epochs=3, paths=RunPaths(d))
    """
    import keras

    from applications.common.checkpoints import RunProgress
    from applications.common.checkpoints import training_callbacks
    from keras_ssm import distribute

    if monitor is None:
        monitor = "val_loss" if validation_data is not None else "loss"
    # Across processes: each feeds its part of the global batches, and
    # only the chief shows progress.
    distribute.prepare_model(model)
    if not distribute.is_chief():
        verbose = 0
    shared = []
    if paths is not None:
        shared = training_callbacks(
            paths, resume=resume, monitor=monitor, mode=mode
        )
    # The progress record comes last, after the logs of every other
    # callback (the Lipschitz weight, the epoch time) are in.
    progress = [c for c in shared if isinstance(c, RunProgress)]
    all_callbacks = [c for c in shared if not isinstance(c, RunProgress)]
    all_callbacks += list(callbacks)
    if stop_on_nan:
        all_callbacks.append(keras.callbacks.TerminateOnNaN())
    all_callbacks += progress
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
    if stop_on_nan and not all(math.isfinite(float(v)) for v in losses):
        raise TrainingDivergedError(
            "the training loss became NaN or infinite (epoch "
            f"{len(losses)}); training stopped. Try a smaller "
            "--learning-rate."
        )
    if progress:  # the whole run, earlier (resumed) epochs included
        return dict(progress[0].history), progress[0].seconds
    return dict(history.history), seconds
