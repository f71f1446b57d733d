"""The ETSMLP block: an element-wise MLP with complex exponential smoothing."""

import keras

from keras_ssm.layers.ces import CES
from keras_ssm.layers.residual import ResidualBlock
from keras_ssm.layers.residual import pop_block_kwargs
from keras_ssm.utils.deprecation import deprecated_arguments
from keras_ssm.utils.validation import ArgumentTypeError
from keras_ssm.utils.validation import check_activation
from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_int


def check_intermediate_dim(intermediate_dim):
    """The inner width, a positive integer (required)."""
    if intermediate_dim is None:
        raise ArgumentTypeError(
            "ETSMLPBlock needs `intermediate_dim`, the width of the hidden "
            "layer (a positive integer)."
        )
    return check_int("intermediate_dim", intermediate_dim, minimum=1)


@keras.saving.register_keras_serializable(package="keras_ssm")
class ETSMLPBlock(ResidualBlock):
    """Residual ETSMLP block (Chu & Lin, 2024): pre-norm MLP around a CES.

    For an input X_i of width d:

        X = Norm(X_i);  H = W1 X  (d -> intermediate_dim);  Y = act(CES(H));
        Z = W2 Y  (intermediate_dim -> d);
        O = Z, or O = sigmoid(W_g X) * Z with `gated=True` (ETSMLP-Gate);
        X_{i+1} = X_i + Dropout(O).

    With `prenorm=False` (post-norm) X = X_i and X_{i+1} = Norm(X_i +
    Dropout(O)), the norm after the residual addition.

    The CES (see `keras_ssm.layers.CES`) is the only token-mixing part: it
    adds 3 complex numbers and one real per hidden channel (7 h reals) to
    the 2 d h + h + d weights of the element-wise MLP, about 3.5/d of them
    (the paper's "~3/d", under 1% for d >= 350).

    Args:
        intermediate_dim: width of the hidden layer (where the CES runs).
            Its deprecated name `hidden_dim` (keras-ssm 0.1.0, whose saved
            configs use it) still works, with a warning; see the README's
            "Vocabulary".
        gated: multiply the output by the gate sigmoid(W_g X) (ETSMLP-Gate).
        norm: "layer" (default), "batch" or "rms".
        dropout: dropout rate on the block output before the residual.
        activation: activation after the CES (default "relu").
        bidirectional: two-sided smoothing (no `step`); see `CES`.
        prenorm: normalise before the MLP (True, the paper's block) or after
            the residual addition (False).
        norm_epsilon: epsilon of the norm (`None`: the norm's default).
        **ces_kwargs: other arguments of `CES` (`r_min`, `r_max`,
            `max_phase`, `init`, `dt_min`, `dt_max`, `max_lambda`,
            `complex`, and the paper's Table 3 ablations `use_alpha`,
            `use_beta`, `use_omega`, ...), together with the usual layer
            keyword arguments (`name`, `dtype`).

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((None, 64)),
    ...     keras_ssm.layers.ETSMLPBlock(64, r_min=0.9, r_max=0.999),
    ...     keras_ssm.layers.ETSMLPGate(64, bidirectional=True),
    ...     keras.layers.GlobalAveragePooling1D(),
    ...     keras.layers.Dense(10),
    ... ])
    """

    config_arguments = ("intermediate_dim", "gated", "activation")

    # keras-ssm 0.1.0 called the inner width `hidden_dim`, now the name of
    # the model width; configs saved then still carry it.
    @deprecated_arguments(hidden_dim="intermediate_dim")
    def __init__(
        self,
        intermediate_dim=None,
        gated=False,
        norm="layer",
        activation="relu",
        **kwargs,
    ):
        super().__init__(norm=norm, **pop_block_kwargs(kwargs))
        self.intermediate_dim = check_intermediate_dim(intermediate_dim)
        self.gated = check_bool("gated", gated)
        self.activation = check_activation("activation", activation)
        # CES validates its own arguments.
        self.ces = CES(
            bidirectional=self.bidirectional,
            dtype=self.dtype_policy,
            name="ces",
            **kwargs,
        )
        self.keep_mixer_arguments(self.ces, kwargs)

    @property
    def hidden_dim(self):
        """Deprecated alias of `intermediate_dim`."""
        return self.intermediate_dim

    def build_mixer(self, input_shape):
        hidden_shape = (*input_shape[:-1], self.intermediate_dim)
        self.input_projection = keras.layers.Dense(
            self.intermediate_dim,
            dtype=self.dtype_policy,
            name="input_projection",
        )
        self.input_projection.build(input_shape)
        self.ces.build(hidden_shape)
        self.output_projection = keras.layers.Dense(
            self.channels, dtype=self.dtype_policy, name="output_projection"
        )
        self.output_projection.build(hidden_shape)
        if self.gated:
            self.gate_projection = keras.layers.Dense(
                self.channels, dtype=self.dtype_policy, name="gate_projection"
            )
            self.gate_projection.build(input_shape)

    def _mix_channels(self, normed, smoothed):
        """Z = W2 act(CES(H)), gated by sigmoid(W_g X) when `gated`."""
        z = self.output_projection(self.activation(smoothed))
        if self.gated:
            z = z * keras.ops.sigmoid(self.gate_projection(normed))
        return z

    def mix(self, x, mask=None, training=None, dt_scale=None):
        h = self.input_projection(x)
        h = self.ces(h, mask=mask, training=training, dt_scale=dt_scale)
        return self._mix_channels(x, h)

    def mixer_initial_state(self, batch_size):
        """The CES state: a (real, imag) pair of (batch, intermediate_dim)."""
        return self.ces.get_initial_state(batch_size)

    def mix_step(self, x_t, state, dt_scale=None):
        h, state = self.ces.step(self.input_projection(x_t), state, dt_scale)
        return self._mix_channels(x_t, h), state


@keras.saving.register_keras_serializable(package="keras_ssm")
class ETSMLPGate(ETSMLPBlock):
    """ETSMLP-Gate: `ETSMLPBlock` with the output gate sigmoid(W_g X).

    Args:
        intermediate_dim: width of the hidden layer (where the CES runs).
        **kwargs: the other arguments of `ETSMLPBlock` and `CES`.

    Example:

    >>> block = keras_ssm.layers.ETSMLPGate(128, bidirectional=True)
    >>> y = block(keras.random.normal((2, 256, 64)))  # (2, 256, 64)
    """

    @deprecated_arguments(hidden_dim="intermediate_dim")
    def __init__(self, intermediate_dim=None, gated=True, **kwargs):
        if check_bool("gated", gated) is not True:
            raise ValueError(
                "ETSMLPGate is the gated block; got `gated=False` (use "
                "ETSMLPBlock for the plain one)."
            )
        super().__init__(intermediate_dim, gated=True, **kwargs)
