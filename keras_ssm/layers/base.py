"""Shared plumbing of the sequence layers: shapes, masks, SSM weights."""

import keras
from keras import ops

from keras_ssm.ops.fft_conv import fft_conv
from keras_ssm.utils.validation import check_choice

# The channel normalisations every residual block accepts as `norm`.
NORMS = ("layer", "batch", "rms")

# Attribute that marks a variable as an SSM parameter (dt, A, ...). The S4
# reference likewise attaches its optimizer settings to each parameter; a mark
# on the variable, unlike a list of weight names, cannot miss a variable that
# is created after the optimizer nor catch a user's weight of the same name.
_SSM_PARAMETER_ATTR = "_keras_ssm_parameter"


def mark_ssm_parameter(variable):
    """Marks `variable` as an SSM parameter; returns it.

    Optimizers from `keras_ssm.optimizers` give marked variables no weight
    decay and their own learning rate. `SequenceLayer.add_ssm_weight` marks
    the weights it creates; call this for SSM weights made otherwise.
    """
    setattr(variable, _SSM_PARAMETER_ATTR, True)
    return variable


def is_ssm_parameter(variable):
    """Whether `variable` (a `keras.Variable`) is marked as an SSM parameter.

    Example:

    >>> layer = keras_ssm.layers.S4D(d_state=4)
    >>> _ = layer(np.zeros((1, 8, 2), "float32"))
    >>> [v.name for v in layer.weights if is_ssm_parameter(v)]
    ['log_dt', 'log_A_real', 'A_imag']
    """
    return bool(getattr(variable, _SSM_PARAMETER_ATTR, False))


def pop_layer_kwargs(kwargs):
    """Removes the base-layer arguments (name, dtype, trainable) from `kwargs`.

    Blocks forward their remaining keyword arguments to an inner layer; the
    base-layer ones belong to the block itself.
    """
    return {
        k: kwargs.pop(k) for k in ("name", "dtype", "trainable") if k in kwargs
    }


def make_norm(norm, name, dtype=None, epsilon=None):
    """A channel normalisation layer: "layer", "batch" or "rms".

    Pass the block's dtype policy as `dtype`: a sublayer left at float32
    would cast the block's activations back to float32 under mixed precision.
    `epsilon=None` means 1e-5 for "layer" and "rms" (the S4 and Mamba
    references) and Keras's default (1e-3) for "batch".
    """
    check_choice("norm", norm, NORMS)
    if norm == "batch":
        if epsilon is None:
            return keras.layers.BatchNormalization(name=name, dtype=dtype)
        return keras.layers.BatchNormalization(
            epsilon=epsilon, name=name, dtype=dtype
        )
    epsilon = 1e-5 if epsilon is None else epsilon
    if norm == "layer":
        return keras.layers.LayerNormalization(
            epsilon=epsilon, name=name, dtype=dtype
        )
    return keras.layers.RMSNormalization(
        epsilon=epsilon, name=name, dtype=dtype
    )


def config_value(name, value):
    """The value of constructor argument `name` as `get_config` gives it.

    Initializers, regularizers and activations (by the Keras naming:
    `*_initializer`, `*_regularizer`, `activation`) are serialized; tuples
    become lists, as JSON has them.
    """
    if name.endswith("initializer"):
        return keras.initializers.serialize(value)
    if name.endswith("regularizer"):
        return keras.regularizers.serialize(value)
    if name == "activation":
        return keras.activations.serialize(value)
    if isinstance(value, tuple):
        return list(value)
    return value


class SequenceLayer(keras.layers.Layer):
    """Base class of the layers that map (batch, length, channels) to itself.

    It validates input shapes with errors that name the problem, zeroes padded
    steps when a mask is given, and declares the recurrent interface
    (`get_initial_state`, `step`) that causal subclasses implement.

    `get_config` returns, besides the base layer's, every name that a class
    of the layer lists in its `config_arguments`: its constructor arguments,
    stored (validated) under the same attribute names.

    Example:

    A causal layer computes the same outputs over a whole sequence (`call`)
    and one step at a time (`step`), from the state of `get_initial_state`:

    >>> layer = keras_ssm.layers.CES()
    >>> x = keras.random.normal((2, 16, 4))
    >>> y = keras.ops.convert_to_numpy(layer(x))
    >>> state = layer.get_initial_state(2)
    >>> y_0, state = layer.step(x[:, 0], state)
    >>> np.allclose(keras.ops.convert_to_numpy(y_0), y[:, 0], atol=1e-5)
    True
    """

    config_arguments = ()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def get_config(self):
        config = super().get_config()
        for cls in reversed(type(self).__mro__):
            for name in vars(cls).get("config_arguments", ()):
                config[name] = config_value(name, getattr(self, name))
        return config

    def _validate_input_shape(self, input_shape):
        """Returns the channel count of a (batch, length, channels) shape.

        Called by `build`; it also sets the layer's `InputSpec`, so that
        Keras checks the rank and channel count of every later call.
        """
        if len(input_shape) != 3:
            raise ValueError(
                f"{self.__class__.__name__} expects inputs of shape "
                f"(batch, length, channels), i.e. rank 3; got shape "
                f"{tuple(input_shape)} (rank {len(input_shape)})."
            )
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"{self.__class__.__name__} needs a known channel dimension; "
                f"got shape {tuple(input_shape)}."
            )
        self.input_spec = keras.InputSpec(ndim=3, axes={-1: int(channels)})
        return int(channels)

    def _require_built(self):
        """Raises a clear error when the recurrent API is used before build.

        `get_initial_state` and `step` need the channel count and weights.
        """
        if not self.built:
            raise ValueError(
                f"{self.__class__.__name__} is not built: call it on an input "
                "of shape (batch, length, channels) or call `build` before "
                "`get_initial_state`/`step`."
            )

    def _cast_inputs(self, inputs):
        """Inputs in the compute dtype (integer inputs become floats).

        Keras autocasts only floating inputs; integers would otherwise keep
        their dtype and make the arithmetic (and the output) integral.
        """
        return ops.cast(inputs, self.compute_dtype)

    @staticmethod
    def _is_empty(inputs):
        """True when the batch or the length of `inputs` is statically 0.

        FFTs, scans and strided slices of the backends fail on such inputs
        (differently on each), so layers return an empty output first.
        """
        return any(dim == 0 for dim in tuple(inputs.shape)[:2])

    @staticmethod
    def _unless_empty_at_run_time(inputs, compute):
        """`compute()`, or `inputs` itself where the length turns out 0.

        Only TensorFlow graphs have lengths that are unknown when traced;
        `tf.scan` fails on a length-0 input there, so the scan layers
        branch around it. Static lengths are handled by `_is_empty`.
        """
        if inputs.shape[1] is not None:
            return compute()
        if keras.backend.backend() != "tensorflow":
            return compute()
        return ops.cond(ops.shape(inputs)[1] > 0, compute, lambda: inputs)

    @staticmethod
    def norm_step(norm_layer, inputs_t):
        """Applies a sequence norm layer to one step `(batch, channels)`.

        Norm layers are built for (batch, length, channels) inputs (and
        `BatchNormalization` checks the rank), so the step gets a length-1
        axis; the norm runs in inference mode, as `step` is for inference.
        """
        x = norm_layer(ops.expand_dims(inputs_t, 1), training=False)
        return x[:, 0]

    def _check_step_inputs(self, inputs_t, kind="layer"):
        """Raises a clear error where `step` cannot run on `inputs_t`.

        The layer must be built and causal (a `bidirectional` one has no
        recurrence), and `inputs_t` of shape `(batch, channels)` with the
        channel count it was built for.
        """
        self._require_built()
        if getattr(self, "bidirectional", False):
            raise ValueError(
                f"{self.__class__.__name__}.step is only defined for the "
                f"causal {kind}; this one has bidirectional=True."
            )
        channels = self.input_spec.axes[-1]
        shape = tuple(inputs_t.shape)
        if len(shape) != 2 or (shape[-1] is not None and shape[-1] != channels):
            raise ValueError(
                f"{self.__class__.__name__}.step expects `inputs_t` of shape "
                f"(batch, {channels}); got {shape}."
            )

    def add_ssm_weight(self, name, shape, initializer, **kwargs):
        """Adds a float32 weight that is never autocast (dt, A, ...).

        The variable is marked as an SSM parameter (`mark_ssm_parameter`):
        optimizers from `keras_ssm.optimizers` exclude it from weight decay.
        """
        variable = self.add_weight(
            name=name,
            shape=shape,
            initializer=initializer,
            dtype="float32",
            autocast=False,
            **kwargs,
        )
        return mark_ssm_parameter(variable)

    @staticmethod
    def apply_mask(x, mask):
        """Zeroes the steps where `mask` is False; identity if mask is None."""
        if mask is None:
            return x
        return x * ops.cast(ops.expand_dims(mask, -1), x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_initial_state(self, batch_size):
        """Zero recurrent state for `batch_size` sequences."""
        raise NotImplementedError(
            f"{self.__class__.__name__} has no recurrent mode."
        )

    def step(self, inputs_t, state):
        """Advances one time step: `(batch, channels)` -> `(outputs, state)`."""
        raise NotImplementedError(
            f"{self.__class__.__name__} has no recurrent mode."
        )


class ConvolutionalSSM(SequenceLayer):
    """Base class of the SSM layers that train as one long convolution.

    `call` convolves each channel with the layer's kernel by FFT (causal
    taps, plus anti-causal ones when `bidirectional`), adds the skip path
    `shortcut_gain() * u`, then dropout, with padded steps zeroed. The
    recurrent state is a (real, imag) pair of float32 zeros of shape
    `(batch, channels) + mode_shape`.

    A subclass (`S4D`, `CES`) sets `bidirectional` and `dropout_layer` in
    its constructor and `channels` in `build`, and writes:

    - `kernel(length, dt_scale=None)`: the taps, `(directions, channels,
      length)`;
    - `shortcut_gain()`: the per-channel weight of the skip path, or None
      for none;
    - optionally `spectral_filter()` (a filter of the kernel's spectrum,
      see `fft_conv`) and `mode_shape`.
    """

    mode_shape = ()

    def spectral_filter(self):
        """A filter of the kernel's frequency response; None for none."""
        return None

    def call(self, inputs, mask=None, training=None, dt_scale=None):
        u = self.apply_mask(self._cast_inputs(inputs), mask)
        if self._is_empty(u):
            return u
        length = u.shape[1] if u.shape[1] is not None else ops.shape(u)[1]
        k = self.kernel(length, dt_scale)
        y = fft_conv(
            u,
            k[0],
            k[1] if self.bidirectional else None,
            spectral_filter=self.spectral_filter(),
        )
        gain = self.shortcut_gain()
        if gain is not None:
            y = y + u * ops.cast(gain, u.dtype)
        y = self.dropout_layer(y, training=training)
        return self.apply_mask(y, mask)

    def get_initial_state(self, batch_size):
        """Zero state: a (real, imag) pair of shape `(batch, channels) +
        mode_shape`, float32."""
        self._require_built()
        shape = (batch_size, self.channels, *self.mode_shape)
        return ops.zeros(shape, "float32"), ops.zeros(shape, "float32")


def causal_conv_step(conv, conv_state, x_t):
    """One step of a causal depthwise `Conv1D` (`groups` = channels).

    Args:
        conv: the built `keras.layers.Conv1D` with `padding="causal"`.
        conv_state: its last `kernel_size - 1` inputs, `(batch,
            kernel_size - 1, channels)`.
        x_t: the new input, `(batch, channels)`.

    Returns:
        `(y_t, new_conv_state)`: the conv output at this step (bias
        included) and the window shifted by one.
    """
    window = ops.concatenate(
        [ops.cast(conv_state, x_t.dtype), x_t[:, None, :]], axis=1
    )
    # The grouped kernel is (kernel_size, 1, channels): one tap per step.
    kernel = ops.cast(conv.kernel[:, 0, :], x_t.dtype)
    y_t = ops.sum(window * kernel[None], axis=1)
    if conv.use_bias:
        y_t = y_t + ops.cast(conv.bias, y_t.dtype)
    return y_t, window[:, 1:]
