"""Training for a wall-clock budget, with the schedule spread over it.

A recipe written in epochs takes a different time on every machine and
backend: on a slow one it overruns a deadline, on a fast one it stops with
time to spare. `WallClockBudget` makes the budget the unit instead. It
stops training after the batch that spends the budget, and it can drive the
learning rate by the fraction of the budget spent: the preset's own schedule
(cosine or linear decay, optional warm-up) is evaluated at
`round(resolution * elapsed / seconds)` of `resolution` ticks, so the rate
anneals to its final value just as the time runs out, however many steps
that turns out to be.

`budget_compile_settings(training)` gives the training settings to compile
with under a budget: the same optimizer, with a constant rate that the
callback then sets.
"""

import math
import time

import keras

from applications.common.errors import UsageError

# Ticks of the time axis the schedule is evaluated on: the rate changes in
# steps of 1/1000 of the budget (0.3 s of a 5-minute budget).
RESOLUTION = 1000

# Batches between two rate updates. Under JAX a change means syncing the
# training state back into the variables, which is cheap but not free.
UPDATE_EVERY = 8

_STEP_WARMUPS = ("warmup_steps", "warmup_epochs")


def budget_compile_settings(training):
    """The training settings to compile with when a budget sets the rate.

    Args:
        training: a preset's training settings (see
            `keras_ssm.models.training_recipe`).

    Returns:
        A copy with `schedule="constant"` (a float rate, which Keras keeps
        in a variable the callback can set) and no warm-up keys.

    Raises:
        UsageError: when the warm-up is given in steps or epochs, which a
            budget in seconds cannot place; give it as `warmup_fraction`.
    """
    given = [k for k in _STEP_WARMUPS if training.get(k)]
    if given:
        raise UsageError(
            f"a wall-clock budget spreads the schedule over time; the "
            f"warm-up must be a `warmup_fraction` of it, not {given[0]}."
        )
    settings = dict(training, schedule="constant")
    for key in ("warmup_fraction", "warmup_initial_lr", *_STEP_WARMUPS):
        settings.pop(key, None)
    return settings


def time_schedule(training):
    """The preset's schedule on `RESOLUTION` ticks of the budget.

    Args:
        training: a preset's training settings.

    Returns:
        A `LearningRateSchedule` of the tick, or a float for a constant
        rate.
    """
    from keras_ssm.schedules import warmup_schedule

    warmup = int(round((training.get("warmup_fraction") or 0) * RESOLUTION))
    return warmup_schedule(
        training["learning_rate"],
        RESOLUTION,
        warmup,
        training.get("schedule", "cosine"),
        alpha=training.get("final_lr_fraction", 0.0),
        initial_learning_rate=training.get("warmup_initial_lr", 0.0),
    )


class WallClockBudget(keras.callbacks.Callback):
    """Stops training when a wall-clock budget is spent; anneals over it.

    The clock starts when training starts (the first step's compilation
    and every validation pass count), plus `elapsed` seconds of earlier
    invocations of a resumed run. Training stops at the end of the batch
    that passes the budget; Keras then finishes the epoch as usual
    (validation, checkpoints).

    Args:
        seconds: the budget (> 0).
        training: optional preset training settings; with them, the
            optimizer's learning rate follows their schedule over the
            budget (compile with `budget_compile_settings(training)`).
            Without them the rate is left alone.
        elapsed: seconds already spent by a resumed run (default 0).

    Attributes:
        exhausted: True once the budget stopped training.

    Example:

        settings = budget_compile_settings(preset["training"])
        model.compile_from_preset(settings)
        budget = WallClockBudget(300, preset["training"])
        model.fit(x, y, epochs=1000, callbacks=[budget])
    """

    def __init__(self, seconds, training=None, elapsed=0.0):
        super().__init__()
        if not (isinstance(seconds, (int, float)) and seconds > 0):
            raise ValueError(f"`seconds` must be > 0, got {seconds!r}.")
        if not (math.isfinite(elapsed) and elapsed >= 0):
            raise ValueError(f"`elapsed` must be >= 0, got {elapsed!r}.")
        self.seconds = float(seconds)
        self.elapsed_before = float(elapsed)
        self.schedule = None if training is None else time_schedule(training)
        self.exhausted = False
        self._start = None
        self._batches = 0

    def elapsed(self):
        """Seconds of the budget spent so far."""
        if self._start is None:
            return self.elapsed_before
        return self.elapsed_before + time.perf_counter() - self._start

    def fraction(self):
        """The part of the budget spent, in [0, 1]."""
        return min(1.0, self.elapsed() / self.seconds)

    def learning_rate(self):
        """The rate the schedule gives at the current point of the budget."""
        tick = int(round(self.fraction() * RESOLUTION))
        if isinstance(self.schedule, (int, float)):
            return float(self.schedule)
        return float(keras.ops.convert_to_numpy(self.schedule(tick)))

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._batches = 0
        self.exhausted = self.elapsed_before >= self.seconds
        if self.exhausted:
            self.model.stop_training = True
        self._set_learning_rate()

    def on_train_batch_begin(self, batch, logs=None):
        self._batches += 1
        if self._batches % UPDATE_EVERY == 0:
            self._set_learning_rate()

    def on_train_batch_end(self, batch, logs=None):
        if self.elapsed() >= self.seconds:
            self.exhausted = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.schedule is not None:
            logs["learning_rate"] = self.learning_rate()

    def _set_learning_rate(self):
        if self.schedule is None:
            return
        if keras.backend.backend() == "jax":
            # Mid-epoch the JAX trainer holds the state outside the
            # variables; write it back first, and the next step reads the
            # new rate with it.
            self.model.jax_state_sync()
        self.model.optimizer.learning_rate = self.learning_rate()


def resolve_budget(option, epochs_option, training, process_count=1):
    """The wall-clock budget of a run in seconds, or None for epochs.

    Args:
        option: the `--time-budget` value (None: not given; 0: off).
        epochs_option: the `--epochs` value (None: not given). Asking for
            epochs without a budget means an epoch schedule.
        training: the preset's training settings; their
            `time_budget_seconds`, when present, is the default.
        process_count: processes of the run. Each would read its own clock
            and could stop at a different batch than the others, so a
            budget needs one process.

    Returns:
        The budget in seconds, or None to train `epochs` epochs.

    Raises:
        UsageError: a budget across several processes.
    """
    if option is not None:
        budget = option or None
    elif epochs_option is not None:
        budget = None
    else:
        budget = training.get("time_budget_seconds")
    if budget and process_count > 1:
        raise UsageError(
            "--time-budget: a wall-clock budget needs a single process (each "
            "process would stop at its own batch); give --epochs instead."
        )
    return budget
