"""Training callbacks of keras-ssm."""

import math
import warnings

import keras

from keras_ssm.layers.lipschitz import LipschitzRegularization

UNITS = ("batch", "epoch")


class LipschitzSchedule(keras.callbacks.Callback):
    """Anneals the weight of `LipschitzRegularization` layers during `fit`.

    Sets the weight to

        lambda(t) = initial_weight * exp(-decay * t),

    with t the number of optimizer steps taken (`unit="batch"`) or the epoch
    index (`unit="epoch"`). A negative `initial_weight` gives the
    frequency-domain variant L = MSE - lambda exp(-eps t) L_Lip: early in
    training the low-frequency part is penalised (rough, high-frequency
    embeddings are rewarded), and the push fades. The current value is
    written to the logs as `lipschitz_weight` and kept in
    `self.weights_seen` as (t, value) pairs.

    Under JAX the trainer keeps the model's state outside its variables
    during an epoch; each assignment therefore goes through `self.model`,
    which writes that state back first, so that the next step reads the new
    value. TensorFlow and PyTorch read the variable at every step.

    Args:
        initial_weight: lambda at t = 0 (float, any sign).
        decay: the rate eps >= 0 of the exponential decay.
        unit: "batch" (update before every step) or "epoch".
        layer_names: names of the `LipschitzRegularization` layers to drive;
            default all of them in the model.
        verbose: print the value at the start of each epoch.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((16, 2)),
    ...     keras_ssm.layers.LipschitzRegularization(weight=-0.5),
    ...     keras.layers.Dense(1),
    ... ])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> x, y = np.ones((4, 16, 2)), np.zeros((4, 16, 1))
    >>> schedule = LipschitzSchedule(-0.5, decay=1e-3, unit="batch")
    >>> _ = model.fit(x, y, epochs=2, callbacks=[schedule], verbose=0)
    >>> len(schedule.weights_seen)  # one value per step
    2
    """

    def __init__(
        self,
        initial_weight,
        decay=0.0,
        unit="batch",
        layer_names=None,
        verbose=0,
    ):
        super().__init__()
        try:
            initial_weight = float(initial_weight)
            decay = float(decay)
        except (TypeError, ValueError):
            raise ValueError(
                "`initial_weight` and `decay` must be floats, got "
                f"{initial_weight!r} and {decay!r}."
            ) from None
        if not decay >= 0:
            raise ValueError(f"`decay` must be >= 0, got {decay}.")
        if unit not in UNITS:
            raise ValueError(f"`unit` must be one of {UNITS}, got {unit!r}.")
        self.initial_weight = initial_weight
        self.decay = decay
        self.unit = unit
        self.layer_names = None if layer_names is None else list(layer_names)
        self.verbose = verbose
        self.weights_seen = []
        self.current_weight = initial_weight

    def weight_at(self, t):
        """lambda(t) = initial_weight * exp(-decay * t)."""
        return self.initial_weight * math.exp(-self.decay * t)

    def _target_layers(self, model):
        layers = [
            layer
            for layer in model._flatten_layers(include_self=True)
            if isinstance(layer, LipschitzRegularization)
        ]
        if self.layer_names is not None:
            layers = [
                layer for layer in layers if layer.name in self.layer_names
            ]
            missing = set(self.layer_names) - {layer.name for layer in layers}
            if missing:
                raise ValueError(
                    "LipschitzSchedule: no LipschitzRegularization layer "
                    f"named {sorted(missing)} in the model."
                )
        if not layers:
            raise ValueError(
                "LipschitzSchedule needs a model with at least one "
                "keras_ssm.layers.LipschitzRegularization layer."
            )
        return layers

    def _assign(self, t=None):
        # `self.model` syncs the JAX trainer's state into the variables and
        # makes the next step re-read them, the new weight included.
        model = self.model
        if t is None:
            t = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        value = self.weight_at(t)
        for layer in self._target_layers(model):
            layer.assign_weight(value)
        self.current_weight = value
        self.weights_seen.append((t, value))

    def on_train_begin(self, logs=None):
        self._target_layers(self.model)  # fail early on a wrong model

    def on_epoch_begin(self, epoch, logs=None):
        if self.unit == "epoch":
            self._assign(epoch)
        if self.verbose:
            print(f"\nLipschitzSchedule: weight {self.current_weight:.6g}")

    def on_train_batch_begin(self, batch, logs=None):
        if self.unit == "batch":
            self._assign()

    def on_train_batch_end(self, batch, logs=None):
        if logs is not None:
            logs["lipschitz_weight"] = self.current_weight

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lipschitz_weight"] = self.current_weight

    def get_config(self):
        return {
            "initial_weight": self.initial_weight,
            "decay": self.decay,
            "unit": self.unit,
            "layer_names": self.layer_names,
            "verbose": self.verbose,
        }


class TerminateOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops `fit` at a NaN or infinite loss and restores the last good state.

    `keras.callbacks.TerminateOnNaN` stops after the step that produced the
    non-finite loss, whose update has already written NaN into the weights
    and the optimizer state. This callback also keeps a copy of both at the
    start of each epoch and puts it back when training stops, so the model
    holds the weights of the last finished epoch, not NaN. The task models
    of keras-ssm add it to every `fit` (see `default_callbacks`).

    Args:
        restore: put back the weights and optimizer state of the start of
            the epoch in which the loss became non-finite.

    Attributes:
        stopped_at: `(epoch, batch)` of the non-finite loss, or None.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x, y = np.ones((4, 2)), np.zeros((4, 1))
    >>> callback = TerminateOnNonFiniteLoss()
    >>> _ = model.fit(x, y, callbacks=[callback], verbose=0)
    >>> callback.stopped_at is None  # the loss stayed finite
    True
    """

    def __init__(self, restore=True):
        super().__init__()
        self.restore = bool(restore)
        self.stopped_at = None
        self._epoch = 0
        self._saved = None

    def _variables(self):
        model = self.model
        variables = list(model.variables)
        if getattr(model, "optimizer", None) is not None:
            variables += list(model.optimizer.variables)
        return variables

    def on_train_begin(self, logs=None):
        self.stopped_at = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.restore:
            self._saved = [
                keras.ops.convert_to_numpy(v) for v in self._variables()
            ]

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        if not math.isfinite(float(keras.ops.convert_to_numpy(loss))):
            self.stopped_at = (self._epoch, batch)
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_at is None:
            return
        epoch, batch = self.stopped_at
        restored = ""
        if self.restore and self._saved is not None:
            variables = self._variables()
            if len(variables) == len(self._saved):
                for variable, value in zip(variables, self._saved):
                    variable.assign(value)
                restored = (
                    "; the weights of the start of that epoch were restored"
                )
        warnings.warn(
            f"Training stopped: the loss became NaN or infinite at epoch "
            f"{epoch + 1}, batch {batch + 1}{restored}. Check the inputs "
            "for NaN, or lower the learning rate.",
            RuntimeWarning,
            stacklevel=2,
        )


def default_callbacks(callbacks=None):
    """`callbacks` plus a `TerminateOnNonFiniteLoss`, unless one is there.

    The task models' `fit` passes its callbacks through this, so that a NaN
    in the data stops training instead of destroying every weight.

    Args:
        callbacks: None, a list of callbacks or a `CallbackList`.

    Returns:
        A list of callbacks (or the given `CallbackList`, unchanged).
    """
    if isinstance(callbacks, keras.callbacks.CallbackList):
        return callbacks
    callbacks = list(callbacks or [])
    stoppers = (TerminateOnNonFiniteLoss, keras.callbacks.TerminateOnNaN)
    if not any(isinstance(c, stoppers) for c in callbacks):
        callbacks.append(TerminateOnNonFiniteLoss())
    return callbacks
