"""The residual S4D block that users stack."""

import keras

from keras_ssm.layers.residual import ResidualBlock
from keras_ssm.layers.residual import pop_block_kwargs
from keras_ssm.layers.s4d import S4D
from keras_ssm.utils.validation import check_activation


@keras.saving.register_keras_serializable(package="keras_ssm")
class S4DBlock(ResidualBlock):
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
        norm_epsilon: epsilon of the norm (`None`: the norm's default).
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

    channel_dropout = True  # the S4D reference's DropoutNd, tied over time

    config_arguments = ("d_state", "activation")

    def __init__(
        self,
        d_state=64,
        norm="layer",
        activation="gelu",
        **kwargs,
    ):
        super().__init__(norm=norm, **pop_block_kwargs(kwargs))
        self.activation = check_activation("activation", activation)
        # S4D validates d_state and the other S4D arguments.
        self.s4d = S4D(
            d_state=d_state,
            bidirectional=self.bidirectional,
            dtype=self.dtype_policy,
            **kwargs,
        )
        self.d_state = self.s4d.d_state
        self.keep_mixer_arguments(self.s4d, kwargs)

    def build_mixer(self, input_shape):
        self.s4d.build(input_shape)
        self.output_projection = keras.layers.Dense(
            2 * self.channels,
            dtype=self.dtype_policy,
            name="output_projection",
        )
        self.output_projection.build(input_shape)

    def _glu(self, x):
        """The gated linear unit on Dense(2 d): value * sigmoid(gate)."""
        value, gate = keras.ops.split(self.output_projection(x), 2, axis=-1)
        return value * keras.ops.sigmoid(gate)

    def mix(self, x, mask=None, training=None, dt_scale=None):
        x = self.s4d(x, mask=mask, training=training, dt_scale=dt_scale)
        x = self.dropout_layer(self.activation(x), training=training)
        return self._glu(x)

    def mixer_initial_state(self, batch_size):
        return self.s4d.get_initial_state(batch_size)

    def mix_step(self, x_t, state, dt_scale=None):
        x_t, state = self.s4d.step(x_t, state, dt_scale)
        return self._glu(self.activation(x_t)), state
