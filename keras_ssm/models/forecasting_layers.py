"""Layers the forecasters share: window normalisation, horizon head.

Registered under the package "keras_ssm" (with the names they were saved
under before, so that saved forecasters keep loading).
"""

import keras
from keras import ops

NORMALIZATIONS = ("last", "revin", "none")


class _ConfigLayer(keras.layers.Layer):
    """A layer whose config is its `_CONFIG` attributes (and the base's)."""

    _CONFIG = ()

    def get_config(self):
        config = super().get_config()
        config.update({key: getattr(self, key) for key in self._CONFIG})
        return config


@keras.saving.register_keras_serializable(package="keras_ssm")
class WindowNormalization(_ConfigLayer):
    """Normalises each input window by its own statistics.

    - "last": x - x[:, -1] (the window's last value per channel, as in
      NLinear; Zeng et al., 2023). The forecast is shifted back by it.
    - "revin": (x - mean) / std over the window (reversible instance
      normalisation without the learned affine; Kim et al., 2022).
    - "none": identity.

    `call` returns (normalised inputs, shift, scale) with shift and scale of
    shape (batch, 1, channels); `WindowDenormalization` undoes it on the
    target columns.

    Args:
        mode: "last", "revin" or "none".
        epsilon: floor of the std in "revin" mode.
    """

    _CONFIG = ("mode", "epsilon")

    def __init__(self, mode="last", epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if mode not in NORMALIZATIONS:
            raise ValueError(
                f"`normalization` must be one of {NORMALIZATIONS}, got "
                f"{mode!r}."
            )
        self.mode = mode
        self.epsilon = float(epsilon)

    def call(self, inputs):
        if self.mode == "last":
            shift = inputs[:, -1:, :]
            scale = ops.ones_like(shift)
        elif self.mode == "revin":
            shift = ops.mean(inputs, axis=1, keepdims=True)
            variance = ops.var(inputs, axis=1, keepdims=True)
            scale = ops.sqrt(variance + self.epsilon)
        else:
            shift = ops.zeros_like(inputs[:, -1:, :])
            scale = ops.ones_like(shift)
        return (inputs - shift) / scale, shift, scale

    def compute_output_shape(self, input_shape):
        stats = (input_shape[0], 1, input_shape[-1])
        return tuple(input_shape), stats, stats


@keras.saving.register_keras_serializable(package="keras_ssm")
class WindowDenormalization(_ConfigLayer):
    """y * scale[targets] + shift[targets]: undoes `WindowNormalization`.

    Args:
        target_columns: indices of the predicted columns among the inputs.
    """

    _CONFIG = ("target_columns",)

    def __init__(self, target_columns, **kwargs):
        super().__init__(**kwargs)
        self.target_columns = [int(c) for c in target_columns]

    def call(self, forecast, shift, scale):
        shift = ops.take(shift, self.target_columns, axis=-1)
        scale = ops.take(scale, self.target_columns, axis=-1)
        return forecast * ops.cast(scale, forecast.dtype) + ops.cast(
            shift, forecast.dtype
        )

    def compute_output_shape(self, forecast_shape, *args):
        return tuple(forecast_shape)


@keras.saving.register_keras_serializable(package="keras_ssm")
class HorizonHead(_ConfigLayer):
    """Maps (batch, input_size, hidden_dim) features to (batch, h, targets).

    A linear map along time (input_size -> h, shared by the channels)
    followed by a linear map along channels (hidden_dim -> targets):
    y[b, t, k] = sum_c W_k[c] (sum_l V[t, l] x[b, l, c] + v[t]) + w_k.

    Args:
        h: forecast horizon.
        num_targets: number of predicted series.
    """

    _CONFIG = ("h", "num_targets")

    def __init__(self, h, num_targets, **kwargs):
        super().__init__(**kwargs)
        self.h = int(h)
        self.num_targets = int(num_targets)
        self.time_projection = keras.layers.Dense(
            self.h, dtype=self.dtype_policy, name="time_projection"
        )
        self.channel_projection = keras.layers.Dense(
            self.num_targets, dtype=self.dtype_policy, name="channels"
        )

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None:
            raise ValueError(
                "HorizonHead expects (batch, input_size, hidden_dim) with a "
                f"known input_size; got {tuple(input_shape)}."
            )
        _, length, channels = input_shape
        self.time_projection.build((None, channels, length))
        self.channel_projection.build((None, self.h, channels))

    def call(self, inputs):
        x = ops.transpose(inputs, (0, 2, 1))  # (batch, hidden_dim, input_size)
        x = ops.transpose(self.time_projection(x), (0, 2, 1))
        return self.channel_projection(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.h, self.num_targets)


@keras.saving.register_keras_serializable(package="keras_ssm")
class DecoderSeed(_ConfigLayer):
    """Informer's decoder input: the last `label_len` steps, then h zeros.

    Args:
        label_len: known steps the decoder starts from.
        h: forecast horizon (placeholder steps).
    """

    _CONFIG = ("label_len", "h")

    def __init__(self, label_len, h, **kwargs):
        super().__init__(**kwargs)
        self.label_len = int(label_len)
        self.h = int(h)

    def call(self, inputs):
        known = inputs[:, -self.label_len :, :]
        shape = ops.shape(inputs)
        zeros = ops.zeros((shape[0], self.h, shape[2]), dtype=inputs.dtype)
        return ops.concatenate([known, zeros], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.label_len + self.h, input_shape[2])
