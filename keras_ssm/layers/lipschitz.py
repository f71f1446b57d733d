"""An identity layer that adds the Lipschitz penalty to the model's loss."""

import keras
from keras import ops

from keras_ssm.regularizers import lipschitz_penalty
from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_float


@keras.saving.register_keras_serializable(package="keras_ssm")
class LipschitzRegularization(keras.layers.Layer):
    """Identity layer adding `weight * L_Lip(inputs)` to the model's losses.

    Put it right after the embedding ("Data Continuity Matters", Qu et al.):

        loss = task loss + weight * L_Lip(embedding),
        L_Lip(x) = mean over batch, channels, t of (x[t+1] - x[t])^2.

    A positive weight smooths the embedded sequence, which state space
    models prefer; a negative weight makes it more discrete, which
    Transformers prefer. The weight is a non-trainable float32 variable that
    is never autocast, so `keras_ssm.callbacks.LipschitzSchedule` can anneal
    it during `fit` and `.keras` files keep its current value. Like Keras'
    activity regularizers, the penalty is added on every call (also in
    `evaluate`); padded steps (a mask) add no jump.

    Args:
        weight: the initial factor lambda (float, any sign).
        normalize: rescale the inputs to [0, 1] (min and max over the batch)
            before the penalty, as the paper's reference code does.
        **kwargs: usual layer arguments (`name`, `dtype`).

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((None,), dtype="int32"),
    ...     keras.layers.Embedding(256, 64),
    ...     keras_ssm.layers.LipschitzRegularization(weight=0.1),
    ...     keras_ssm.layers.S4DBlock(d_state=64),
    ...     keras.layers.GlobalAveragePooling1D(),
    ...     keras.layers.Dense(10),
    ... ])
    """

    def __init__(self, weight=0.0, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.initial_weight = check_float("weight", weight)
        self.normalize = check_bool("normalize", normalize)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                "LipschitzRegularization expects inputs of shape (batch, "
                f"length, channels); got shape {tuple(input_shape)}."
            )
        self.penalty_weight = self.add_weight(
            name="penalty_weight",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_weight),
            dtype="float32",
            trainable=False,
            autocast=False,
        )

    @property
    def weight(self):
        """The current factor lambda as a Python float."""
        return float(ops.convert_to_numpy(self.penalty_weight))

    def assign_weight(self, value):
        """Sets the factor lambda (the layer must be built)."""
        self.penalty_weight.assign(check_float("weight", value))

    def call(self, inputs, mask=None):
        # An identity in the compute dtype: integer inputs become floats, as
        # in every keras-ssm layer.
        inputs = ops.cast(inputs, self.compute_dtype)
        penalty = lipschitz_penalty(inputs, mask=mask, normalize=self.normalize)
        self.add_loss(ops.convert_to_tensor(self.penalty_weight) * penalty)
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        weight = self.weight if self.built else self.initial_weight
        config.update({"weight": weight, "normalize": self.normalize})
        return config


def penalize_outputs(model, weight=0.0, normalize=False, name=None):
    """Wraps `model` so that `weight * L_Lip(outputs)` joins its loss.

    The output penalty of *Data Continuity Matters* (Qu et al., ICLR 2023,
    frequency-domain section): for a forecaster with predictions y_hat,

        loss = MSE(y, y_hat) - lambda * exp(-eps * t) * L_Lip(y_hat).

    The returned model computes the same outputs as `model`, passed through
    a `LipschitzRegularization` layer named "output_lipschitz". Give the
    sign with `weight` (negative for the formula above) and drive the decay
    with `keras_ssm.callbacks.LipschitzSchedule(weight, decay=eps,
    unit=...)`, where t is the epoch index (`unit="epoch"`, 0 during the
    first epoch) or the number of optimizer steps already taken
    (`unit="batch"`). The penalty is the mean over batch, steps and
    channels of the squared first differences along the time axis of the
    outputs, so the outputs must have shape (batch, length, channels).

    A penalty with a negative weight is unbounded below: adding an
    alternating perturbation of amplitude a to the predictions raises the
    MSE by about a^2 and L_Lip by about 4 a^2, so with |weight| > 1/4 the
    loss has no minimum until the decay has brought the factor below 1/4.

    Args:
        model: a single-input Keras model whose output has shape (batch,
            length, channels).
        weight: the initial factor (float, any sign).
        normalize: rescale the outputs to [0, 1] before the penalty.
        name: name of the returned model (default `model.name` +
            "_output_lipschitz").

    Returns:
        A functional `keras.Model`, uncompiled, sharing `model`'s weights.

    Example:

    >>> base = keras.Sequential([keras.Input((8, 1)), keras.layers.Dense(1)])
    >>> model = penalize_outputs(base, weight=-0.1)
    >>> model.compile(optimizer="adam", loss="mse")
    >>> schedule = keras_ssm.callbacks.LipschitzSchedule(
    ...     -0.1, decay=0.5, unit="epoch"
    ... )
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`model` must be a keras.Model, got {type(model).__name__}."
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            "`model` must have one input and one output; got "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs."
        )
    if len(model.outputs[0].shape) != 3:
        raise ValueError(
            "`model`'s output must have shape (batch, length, channels); got "
            f"shape {tuple(model.outputs[0].shape)}."
        )
    source = model.inputs[0]
    inputs = keras.Input(
        batch_shape=source.shape, dtype=source.dtype, name="inputs"
    )
    outputs = LipschitzRegularization(
        weight=weight, normalize=normalize, name="output_lipschitz"
    )(model(inputs))
    return keras.Model(
        inputs, outputs, name=name or f"{model.name}_output_lipschitz"
    )
