"""The residual S4D block that users stack."""

import keras

from keras_ssm.layers.base import SequenceLayer
from keras_ssm.layers.base import make_norm
from keras_ssm.layers.base import pop_layer_kwargs
from keras_ssm.layers.s4d import S4D
from keras_ssm.utils.validation import check_activation
from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_dropout


@keras.saving.register_keras_serializable(package="keras_ssm")
class S4DBlock(SequenceLayer):
    """Residual S4D block: norm, S4D, GELU, dropout, GLU projection, residual.

    With `prenorm=True`: x + Dropout(GLU(Dropout(GELU(S4D(Norm(x)))))).
    With `prenorm=False`: Norm(x + ...), as in the S4 reference's post-norm.
    The GLU projection is Dense(2 d) followed by a gated linear unit.

    Args:
        d_state: state size of the S4D layer.
        norm: "layer" (default), "batch" or "rms".
        prenorm: normalise before (True) or after (False) the residual.
        dropout: dropout rate after the activation and after the
            projection; each drops whole channels (one mask per sequence
            and channel, tied over time), as `DropoutNd` in the S4D
            reference (`state-spaces/s4`, `models/s4/s4d.py`).
        activation: activation after the S4D layer (default "gelu").
        bidirectional: give the S4D layer an anti-causal kernel too (no
            `step`); see `S4D`.
        **s4d_kwargs: other arguments of `S4D` (`init`, `dt_min`, `dt_max`,
            `freq_scale`, ...), together with the usual layer keyword
            arguments (`name`, `dtype`).

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((None, 16)),
    ...     keras_ssm.layers.S4DBlock(d_state=64),
    ...     keras_ssm.layers.S4DBlock(d_state=64),
    ...     keras.layers.GlobalAveragePooling1D(),
    ...     keras.layers.Dense(10),
    ... ])
    """

    def __init__(
        self,
        d_state=64,
        norm="layer",
        prenorm=True,
        dropout=0.0,
        activation="gelu",
        bidirectional=False,
        **kwargs,
    ):
        super().__init__(**pop_layer_kwargs(kwargs))
        self.norm_layer = make_norm(norm, "norm", self.dtype_policy)
        self.norm = norm
        self.prenorm = check_bool("prenorm", prenorm)
        self.dropout = check_dropout("dropout", dropout)
        self.activation = check_activation("activation", activation)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        # S4D validates d_state and the other S4D arguments.
        self.s4d = S4D(
            d_state=d_state,
            bidirectional=self.bidirectional,
            dtype=self.dtype_policy,
            **kwargs,
        )
        self.d_state = self.s4d.d_state
        # The validated (plain Python) values, for get_config.
        s4d_config = self.s4d.get_config()
        self.s4d_kwargs = {key: s4d_config[key] for key in kwargs}
        # Channel dropout (tied over time), as the S4D reference's DropoutNd.
        self.dropout_layer = keras.layers.SpatialDropout1D(
            self.dropout, dtype=self.dtype_policy
        )

    def build(self, input_shape):
        channels = self._validate_input_shape(input_shape)
        self.channels = channels
        self.norm_layer.build(input_shape)
        self.s4d.build(input_shape)
        self.output_projection = keras.layers.Dense(
            2 * channels, dtype=self.dtype_policy, name="output_projection"
        )
        self.output_projection.build(input_shape)

    def call(self, inputs, mask=None, training=None):
        self._check_call_shape(inputs, self.channels)
        inputs = self._cast_inputs(inputs)
        if self._is_empty(inputs):
            return inputs
        x = (
            self.norm_layer(inputs, training=training)
            if self.prenorm
            else inputs
        )
        x = self.s4d(x, mask=mask, training=training)
        x = self.dropout_layer(self.activation(x), training=training)
        value, gate = keras.ops.split(self.output_projection(x), 2, axis=-1)
        x = self.dropout_layer(
            value * keras.ops.sigmoid(gate), training=training
        )
        x = inputs + x
        if not self.prenorm:
            x = self.norm_layer(x, training=training)
        return self.apply_mask(x, mask)

    def get_initial_state(self, batch_size):
        self._require_built()
        return self.s4d.get_initial_state(batch_size)

    def step(self, inputs_t, state):
        """One recurrent step of the block (causal, pre- or post-norm)."""
        self._require_built()
        self._check_step_shape(inputs_t, self.channels)
        inputs_t = self._cast_inputs(inputs_t)
        x = (
            self.norm_step(self.norm_layer, inputs_t)
            if self.prenorm
            else inputs_t
        )
        x, state = self.s4d.step(x, state)
        x = self.activation(x)
        value, gate = keras.ops.split(self.output_projection(x), 2, axis=-1)
        x = inputs_t + value * keras.ops.sigmoid(gate)
        if not self.prenorm:
            x = self.norm_step(self.norm_layer, x)
        return x, state

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "d_state": self.d_state,
                "norm": self.norm,
                "prenorm": self.prenorm,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "bidirectional": self.bidirectional,
                **self.s4d_kwargs,
            }
        )
        return config
