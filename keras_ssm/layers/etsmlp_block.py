"""The ETSMLP block: an element-wise MLP with complex exponential smoothing."""

import keras

from keras_ssm.layers.base import SequenceLayer
from keras_ssm.layers.base import make_norm
from keras_ssm.layers.base import pop_layer_kwargs
from keras_ssm.layers.ces import CES


@keras.saving.register_keras_serializable(package="keras_ssm")
class ETSMLPBlock(SequenceLayer):
    """Residual ETSMLP block (Chu & Lin, 2024): pre-norm MLP around a CES.

    For an input X_i of width d:

        X = Norm(X_i);  H = W1 X  (d -> hidden_dim);  Y = act(CES(H));
        Z = W2 Y  (hidden_dim -> d);
        O = Z, or O = sigmoid(W_g X) * Z with `gated=True` (ETSMLP-Gate);
        X_{i+1} = X_i + Dropout(O).

    The CES (see `keras_ssm.layers.CES`) is the only token-mixing part: it
    adds 3 complex numbers and one real per hidden channel (7 h reals) to
    the 2 d h + h + d weights of the element-wise MLP, about 3.5/d of them
    (the paper's "~3/d", under 1% for d >= 350).

    Args:
        hidden_dim: width of the hidden layer (where the CES runs).
        gated: multiply the output by the gate sigmoid(W_g X) (ETSMLP-Gate).
        norm: "layer" (default) or "batch" ("rms" also works).
        dropout: dropout rate on the block output before the residual.
        activation: activation after the CES (default "relu").
        bidirectional: two-sided smoothing (no `step`); see `CES`.
        **ces_kwargs: other arguments of `CES` (`r_min`, `r_max`,
            `max_phase`, `init`, `dt_min`, `dt_max`, `max_lambda`,
            `complex`, ...), together with the usual layer keyword arguments
            (`name`, `dtype`).

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((None, 64)),
    ...     keras_ssm.layers.ETSMLPBlock(64, r_min=0.9, r_max=0.999),
    ...     keras_ssm.layers.ETSMLPGate(64, bidirectional=True),
    ...     keras.layers.GlobalAveragePooling1D(),
    ...     keras.layers.Dense(10),
    ... ])
    """

    def __init__(
        self,
        hidden_dim,
        gated=False,
        norm="layer",
        dropout=0.0,
        activation="relu",
        bidirectional=False,
        **kwargs,
    ):
        super().__init__(**pop_layer_kwargs(kwargs))
        if not isinstance(hidden_dim, int) or hidden_dim < 1:
            raise ValueError(
                f"`hidden_dim` must be a positive integer, got {hidden_dim!r}."
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}.")
        self.hidden_dim = hidden_dim
        self.gated = bool(gated)
        self.norm = norm
        self.dropout = float(dropout)
        self.activation = keras.activations.get(activation)
        self.bidirectional = bool(bidirectional)
        self.ces_kwargs = kwargs
        self.norm_layer = make_norm(norm, "norm", self.dtype_policy)
        self.ces = CES(
            bidirectional=bidirectional,
            dtype=self.dtype_policy,
            name="ces",
            **kwargs,
        )
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy
        )

    def build(self, input_shape):
        channels = self._validate_input_shape(input_shape)
        self.channels = channels
        hidden_shape = (*input_shape[:-1], self.hidden_dim)
        self.norm_layer.build(input_shape)
        self.input_projection = keras.layers.Dense(
            self.hidden_dim, dtype=self.dtype_policy, name="input_projection"
        )
        self.input_projection.build(input_shape)
        self.ces.build(hidden_shape)
        self.output_projection = keras.layers.Dense(
            channels, dtype=self.dtype_policy, name="output_projection"
        )
        self.output_projection.build(hidden_shape)
        if self.gated:
            self.gate_projection = keras.layers.Dense(
                channels, dtype=self.dtype_policy, name="gate_projection"
            )
            self.gate_projection.build(input_shape)

    def _mix_channels(self, normed, smoothed):
        """Z = W2 act(CES(H)), gated by sigmoid(W_g X) when `gated`."""
        z = self.output_projection(self.activation(smoothed))
        if self.gated:
            z = z * keras.ops.sigmoid(self.gate_projection(normed))
        return z

    def call(self, inputs, mask=None, training=None):
        self._check_call_shape(inputs, self.channels)
        x = self.norm_layer(inputs, training=training)
        h = self.ces(self.input_projection(x), mask=mask, training=training)
        z = self.dropout_layer(self._mix_channels(x, h), training=training)
        return self.apply_mask(inputs + z, mask)

    def get_initial_state(self, batch_size):
        """The CES state: a (real, imag) pair of (batch, hidden_dim)."""
        return self.ces.get_initial_state(batch_size)

    def step(self, inputs_t, state):
        """One recurrent step of the causal block (inference mode).

        Args:
            inputs_t: tensor of shape `(batch, channels)`.
            state: the pair returned by `get_initial_state` or `step`.

        Returns:
            `(outputs_t, new_state)`, outputs of shape `(batch, channels)`.
        """
        self._check_step_shape(inputs_t, self.channels)
        inputs_t = keras.ops.convert_to_tensor(inputs_t)
        # The norm layers are built for rank 3 (BatchNormalization checks).
        x = self.norm_layer(keras.ops.expand_dims(inputs_t, 1))[:, 0]
        h, state = self.ces.step(self.input_projection(x), state)
        return inputs_t + self._mix_channels(x, h), state

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "gated": self.gated,
                "norm": self.norm,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "bidirectional": self.bidirectional,
                **self.ces_kwargs,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_ssm")
class ETSMLPGate(ETSMLPBlock):
    """ETSMLP-Gate: `ETSMLPBlock` with the output gate sigmoid(W_g X).

    Args:
        hidden_dim: width of the hidden layer (where the CES runs).
        **kwargs: the other arguments of `ETSMLPBlock` and `CES`.

    Example:

    >>> block = keras_ssm.layers.ETSMLPGate(128, bidirectional=True)
    >>> y = block(keras.random.normal((2, 256, 64)))  # (2, 256, 64)
    """

    def __init__(self, hidden_dim, gated=True, **kwargs):
        if not gated:
            raise ValueError(
                "ETSMLPGate is the gated block; got `gated=False` (use "
                "ETSMLPBlock for the plain one)."
            )
        super().__init__(hidden_dim, gated=True, **kwargs)
