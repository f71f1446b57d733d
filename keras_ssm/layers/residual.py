"""`ResidualBlock`: the residual wrapper that every block of keras-ssm shares.

A block is a token mixer (S4D, CES, a selective SSM, SSD) inside one and the
same residual logic:

    pre-norm (default):  outputs = x + Dropout(mix(Norm(x)))
    post-norm:           outputs = Norm(x + Dropout(mix(x)))

with padded steps (mask False) of the outputs set to zero. The logic is
written once here, for the parallel form (`call`) and the recurrent form
(`step`); a block subclass writes only its mixer.
"""

import keras
from keras import ops

from keras_ssm.layers.base import SequenceLayer
from keras_ssm.layers.base import make_norm
from keras_ssm.layers.base import pop_layer_kwargs
from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_dropout
from keras_ssm.utils.validation import check_float

# The arguments of every block (besides `norm`, whose default differs).
BLOCK_ARGUMENTS = ("prenorm", "dropout", "bidirectional", "norm_epsilon")


def pop_block_kwargs(kwargs):
    """Removes the `ResidualBlock` and base-layer arguments from `kwargs`.

    Blocks forward their remaining keyword arguments to their mixer.
    """
    block_kwargs = pop_layer_kwargs(kwargs)
    for key in BLOCK_ARGUMENTS:
        if key in kwargs:
            block_kwargs[key] = kwargs.pop(key)
    return block_kwargs


def flip_time(x):
    """`x` reversed along the time axis (axis 1); None stays None."""
    return None if x is None else ops.flip(x, axis=1)


class ResidualBlock(SequenceLayer):
    """Base class of the residual blocks: norm, mixer, dropout, residual, mask.

    With `prenorm=True` a block computes `x + Dropout(mix(Norm(x)))`; with
    `prenorm=False`, `Norm(x + Dropout(mix(x)))`, the norm after the
    residual addition (the post-norm of the S4 reference). Steps where the
    mask is False come out as zeros. `step` runs the same block one time
    step at a time, with the norm in inference mode.

    A subclass implements its mixer and nothing else:

    - `build_mixer(input_shape)`: create and build the mixer's sublayers
      (`self.channels` is set);
    - `mix(x, mask=None, training=None, **kwargs)`: the mixer's parallel
      form, `(batch, length, channels)` to the same shape, before dropout;
    - for causal blocks, `mixer_initial_state(batch_size)` and
      `mix_step(x_t, state, **kwargs)` -> `(y_t, state)`;
    - its constructor arguments in `config_arguments` (for `get_config`),
      and `keep_mixer_arguments` for the ones it forwards to its mixer.

    Keyword arguments of `call` and `step` beyond `mask`/`training` (e.g.
    `dt_scale`) go to `mix` / `mix_step`. `average_directions` is the
    bidirectional combination for mixers that read the reversed sequence
    with a second set of weights.

    Args:
        norm: "layer", "batch" or "rms".
        prenorm: normalise before the mixer (True) or after the residual
            addition (False).
        dropout: dropout rate on the mixer's output before the residual
            addition, in [0, 1).
        bidirectional: whether the mixer also reads the sequence backwards;
            such a block has no `step`.
        norm_epsilon: epsilon of the norm; `None` keeps the norm's default
            (1e-5 for "layer" and "rms", Keras's 1e-3 for "batch").
        **kwargs: layer arguments (`name`, `dtype`, `trainable`).

    Example:

    A block of one depthwise causal convolution:

    ```python
    class ConvBlock(keras_ssm.layers.ResidualBlock):
        def build_mixer(self, input_shape):
            self.conv = keras.layers.Conv1D(
                self.channels, 3, padding="causal", groups=self.channels
            )
            self.conv.build(input_shape)

        def mix(self, x, mask=None, training=None):
            return self.conv(x)

    block = ConvBlock(norm="rms", dropout=0.1)
    y = block(keras.random.normal((2, 16, 8)))  # (2, 16, 8)
    ```
    """

    # Dropout that drops whole channels of a sequence (one mask per sequence
    # and channel, tied over time) instead of single entries.
    channel_dropout = False

    config_arguments = (
        "norm",
        "prenorm",
        "dropout",
        "bidirectional",
        "norm_epsilon",
    )

    def __init__(
        self,
        norm="layer",
        prenorm=True,
        dropout=0.0,
        bidirectional=False,
        norm_epsilon=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.norm_epsilon = check_float(
            "norm_epsilon",
            norm_epsilon,
            minimum=0.0,
            min_open=True,
            allow_none=True,
        )
        self.norm_layer = make_norm(
            norm, "norm", self.dtype_policy, epsilon=self.norm_epsilon
        )
        self.norm = norm
        self.prenorm = check_bool("prenorm", prenorm)
        self.dropout = check_dropout("dropout", dropout)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        dropout_class = (
            keras.layers.SpatialDropout1D
            if self.channel_dropout
            else keras.layers.Dropout
        )
        self.dropout_layer = dropout_class(
            self.dropout, dtype=self.dtype_policy
        )
        # The arguments that the block passes on to its mixer, as the mixer
        # validated them (`keep_mixer_arguments`); part of the config.
        self.mixer_arguments = {}

    def keep_mixer_arguments(self, mixer, names):
        """Keeps the validated values of the arguments `names` of `mixer`.

        A block that forwards keyword arguments to its mixer calls this
        after making it, so that `get_config` holds them as plain values.
        """
        config = mixer.get_config()
        self.mixer_arguments = {name: config[name] for name in names}

    # -- what a subclass writes --------------------------------------------

    def build_mixer(self, input_shape):
        """Creates and builds the mixer's sublayers."""
        raise NotImplementedError(
            f"{self.__class__.__name__} must implement `build_mixer`."
        )

    def mix(self, x, mask=None, training=None, **kwargs):
        """The mixer over a sequence: (batch, length, channels) in and out."""
        raise NotImplementedError(
            f"{self.__class__.__name__} must implement `mix`."
        )

    def mixer_initial_state(self, batch_size):
        """The mixer's zero recurrent state for `batch_size` sequences."""
        raise NotImplementedError(
            f"{self.__class__.__name__} has no recurrent mode."
        )

    def mix_step(self, x_t, state, **kwargs):
        """The mixer over one step: `(batch, channels)` -> `(y_t, state)`."""
        raise NotImplementedError(
            f"{self.__class__.__name__} has no recurrent mode."
        )

    # -- the residual logic, written once ----------------------------------

    def build(self, input_shape):
        self.channels = self._validate_input_shape(input_shape)
        self.norm_layer.build(input_shape)
        self.build_mixer(input_shape)

    def call(self, inputs, mask=None, training=None, **mixer_kwargs):
        inputs = self._cast_inputs(inputs)
        if self._is_empty(inputs):
            return inputs
        return self._unless_empty_at_run_time(
            inputs,
            lambda: self._residual(inputs, mask, training, mixer_kwargs),
        )

    def _residual(self, inputs, mask, training, mixer_kwargs):
        """The block's output for inputs of a nonzero length."""
        x = inputs
        if self.prenorm:
            x = self.norm_layer(x, training=training)
        y = self.mix(x, mask=mask, training=training, **mixer_kwargs)
        outputs = inputs + self.dropout_layer(y, training=training)
        if not self.prenorm:
            outputs = self.norm_layer(outputs, training=training)
        return self.apply_mask(outputs, mask)

    def average_directions(self, forward, backward, x, mask):
        """0.5 * (forward(x) + reversed(backward(reversed x))).

        `forward` and `backward` map `(x, mask)` to the mixer output of one
        direction. The average (rather than a sum) keeps the magnitude of
        one direction, which avoids overflows under mixed precision.
        """
        y = forward(x, mask)
        y_backward = backward(flip_time(x), flip_time(mask))
        return 0.5 * (y + flip_time(y_backward))

    def get_initial_state(self, batch_size):
        """The zero recurrent state of the block's mixer."""
        self._require_built()
        return self.mixer_initial_state(batch_size)

    def step(self, inputs_t, state, **mixer_kwargs):
        """One recurrent step of the block; equals `call` over a sequence.

        Args:
            inputs_t: tensor of shape `(batch, channels)`.
            state: the state from `get_initial_state` or the previous step.
            **mixer_kwargs: further arguments of the mixer (e.g.
                `dt_scale`).

        Returns:
            `(outputs_t, new_state)`, outputs of shape `(batch, channels)`.
        """
        self._check_step_inputs(inputs_t, kind="block")
        inputs_t = self._cast_inputs(inputs_t)
        x = inputs_t
        if self.prenorm:
            x = self.norm_step(self.norm_layer, x)
        y, state = self.mix_step(x, state, **mixer_kwargs)
        outputs = inputs_t + y
        if not self.prenorm:
            outputs = self.norm_step(self.norm_layer, outputs)
        return outputs, state

    def get_config(self):
        return {**super().get_config(), **self.mixer_arguments}
