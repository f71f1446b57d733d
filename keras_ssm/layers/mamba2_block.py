"""The Mamba-2 block (Dao & Gu, ICML 2024) with a residual wrapper.

    (z, xBC, dt_raw) = in_proj(Norm(u))
    (x, B, C) = SiLU(causal depthwise conv(xBC))
    dt = softplus(dt_raw + dt_bias)              one step size per head
    y = SSD(x, dt, A = -exp(A_log), B, C) + D x   per head of `headdim`
    out = u + out_proj(RMSNorm(y * SiLU(z)))

SSD is `keras_ssm.ops.ssd`: the selective SSM with a scalar decay per head,
computed by chunks.
"""

import keras
from keras import ops

from keras_ssm.layers.base import SequenceLayer
from keras_ssm.layers.base import make_norm
from keras_ssm.layers.base import pop_layer_kwargs
from keras_ssm.layers.mamba_block import DEFAULT_EXPAND
from keras_ssm.layers.mamba_block import resolve_inner_width
from keras_ssm.layers.selective_ssm import dt_bias_initializer
from keras_ssm.ops.ssd import ssd
from keras_ssm.utils.validation import ArgumentTypeError
from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_dropout
from keras_ssm.utils.validation import check_float
from keras_ssm.utils.validation import check_int

GATED_NORM_EPSILON = 1e-5


def check_a_init_range(value):
    """`A_init_range` as a tuple `(low, high)` of floats, 0 < low <= high."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ArgumentTypeError(
            "`A_init_range` must be a pair (low, high) of finite numbers "
            f"with 0 < low <= high, got {value!r}."
        )
    low, high = (
        check_float(f"A_init_range[{i}]", v, minimum=0.0, min_open=True)
        for i, v in enumerate(value)
    )
    if low > high:
        raise ValueError(
            "`A_init_range` must be a pair (low, high) with 0 < low <= high, "
            f"got {value!r}."
        )
    return low, high


def a_log_initializer(low, high):
    """A_log = log(A) with A ~ U[low, high] per head (A = -exp(A_log))."""

    def initializer(shape, dtype=None):
        a = keras.random.uniform(shape, low, high, dtype="float32")
        return ops.cast(ops.log(a), dtype or "float32")

    return initializer


class SSDMixer(SequenceLayer):
    """One direction of Mamba-2's mixer: conv, SiLU, SSD with a D skip.

    Maps the `xBC` part of the input projection, `(batch, length,
    intermediate_dim + 2 * ngroups * d_state)`, and the raw step sizes
    `(batch, length, num_heads)` to `y` of shape `(batch, length,
    intermediate_dim)`, float32. Used by `Mamba2Block`, which creates one
    per direction; its SSM weights (`A_log`, `dt_bias`, `D_skip`) are
    float32 and get no weight decay under `keras_ssm.optimizers.ssm_adamw`.
    """

    def __init__(
        self,
        intermediate_dim,
        d_state,
        d_conv,
        headdim,
        ngroups,
        chunk_size=None,
        A_init_range=(1.0, 16.0),
        dt_min=0.001,
        dt_max=0.1,
        dt_init_floor=1e-4,
        conv_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.intermediate_dim = intermediate_dim
        self.d_state = d_state
        self.d_conv = d_conv
        self.headdim = headdim
        self.ngroups = ngroups
        self.chunk_size = chunk_size
        self.A_init_range = tuple(A_init_range)
        self.dt_min = dt_min
        self.dt_max = dt_max
        self.dt_init_floor = dt_init_floor
        self.conv_bias = conv_bias
        self.num_heads = intermediate_dim // headdim
        self.conv_dim = intermediate_dim + 2 * ngroups * d_state

    def build(self, input_shape):
        self.conv = keras.layers.Conv1D(
            self.conv_dim,
            self.d_conv,
            padding="causal",
            groups=self.conv_dim,
            use_bias=self.conv_bias,
            dtype=self.dtype_policy,
            name="conv",
        )
        self.conv.build(tuple(input_shape[:-1]) + (self.conv_dim,))
        self.dt_bias = self.add_ssm_weight(
            "dt_bias",
            (self.num_heads,),
            dt_bias_initializer(self.dt_min, self.dt_max, self.dt_init_floor),
        )
        self.A_log = self.add_ssm_weight(
            "A_log", (self.num_heads,), a_log_initializer(*self.A_init_range)
        )
        # "D_skip", not "D": weight names are matched globally for weight
        # decay, and S4D's "D" is decayed (see SelectiveSSM).
        self.D_skip = self.add_ssm_weight(
            "D_skip", (self.num_heads,), keras.initializers.Ones()
        )

    def A(self):
        """The per-head decay rates A = -exp(A_log), shape (num_heads,)."""
        return -ops.exp(self.A_log)

    def _split(self, xbc):
        """(x, B, C) of the conv output; B and C per group."""
        d_inner, n, g = self.intermediate_dim, self.d_state, self.ngroups
        x = xbc[..., :d_inner]
        B = xbc[..., d_inner : d_inner + g * n]
        C = xbc[..., d_inner + g * n :]
        lead = tuple(ops.shape(xbc)[:-1])
        B = ops.reshape(B, lead + (g, n))
        C = ops.reshape(C, lead + (g, n))
        return x, B, C

    def call(self, xbc, dt_raw, mask=None):
        xbc = self.apply_mask(xbc, mask)  # padded steps look like padding
        xbc = ops.cast(ops.silu(self.conv(xbc)), "float32")
        xbc = self.apply_mask(xbc, mask)  # x = 0 at padded steps
        x, B, C = self._split(xbc)
        dt = ops.softplus(ops.cast(dt_raw, "float32") + self.dt_bias)
        dt = self.apply_mask(dt, mask)  # dt = 0: the state passes through
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        heads = ops.reshape(x, (batch, length, self.num_heads, self.headdim))
        y = ssd(heads, dt, self.A(), B, C, chunk_size=self.chunk_size)
        y = y + heads * self.D_skip[:, None]
        return ops.reshape(y, (batch, length, self.intermediate_dim))

    def get_initial_state(self, batch_size):
        conv_state = ops.zeros(
            (batch_size, self.d_conv - 1, self.conv_dim), self.compute_dtype
        )
        ssm_state = ops.zeros(
            (batch_size, self.num_heads, self.headdim, self.d_state), "float32"
        )
        return conv_state, ssm_state

    def step(self, xbc_t, dt_raw_t, state):
        """One step: the conv window, then H = exp(dt A) H + dt x B^T."""
        conv_state, ssm_state = state
        window = ops.concatenate(
            [ops.cast(conv_state, xbc_t.dtype), xbc_t[:, None, :]], axis=1
        )
        # Conv1D's grouped kernel is (d_conv, 1, conv_dim): one tap a step.
        kernel = ops.cast(self.conv.kernel[:, 0, :], xbc_t.dtype)
        xbc = ops.sum(window * kernel[None], axis=1)
        if self.conv_bias:
            xbc = xbc + ops.cast(self.conv.bias, xbc.dtype)
        x, B, C = self._split(ops.cast(ops.silu(xbc), "float32"))
        dt = ops.softplus(ops.cast(dt_raw_t, "float32") + self.dt_bias)
        x = ops.reshape(x, (-1, self.num_heads, self.headdim))
        per_group = self.num_heads // self.ngroups
        B = ops.repeat(B, per_group, axis=1)  # (batch, heads, d_state)
        C = ops.repeat(C, per_group, axis=1)
        decay = ops.exp(dt * self.A())[:, :, None, None]
        drive = (dt[:, :, None] * x)[..., None] * B[:, :, None, :]
        ssm_state = decay * ssm_state + drive
        y = ops.sum(ssm_state * C[:, :, None, :], axis=-1)
        y = y + x * self.D_skip[:, None]
        y = ops.reshape(y, (-1, self.intermediate_dim))
        return y, (window[:, 1:], ssm_state)


@keras.saving.register_keras_serializable(package="keras_ssm")
class Mamba2Block(SequenceLayer):
    """Mamba-2 block: selective SSM with one decay per head, computed by SSD.

    From Dao & Gu, *Transformers are SSMs: Generalized Models and Efficient
    Algorithms Through Structured State Space Duality*, ICML 2024. With
    `d_inner = intermediate_dim` (default `expand * channels`), `H = d_inner
    / headdim` heads, `G = ngroups` groups and `N = d_state`, one block is

        z, xBC, dt_raw = in_proj(Norm(u))     sizes d_inner, d_inner + 2GN, H
        x, B, C = SiLU(conv(xBC))             causal depthwise, width d_conv
        dt = softplus(dt_raw + dt_bias)       (batch, length, H)
        A = -exp(A_log)                       one scalar per head
        h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T   (headdim, N) per head
        y_t = h_t C_t + D x_t
        out = u + Dropout(out_proj(RMSNorm(y * SiLU(z))))

    where heads share B and C within a group (head i uses group i // (H /
    G)). The recurrence runs as the chunked SSD algorithm
    (`keras_ssm.ops.ssd`) in float32 under every dtype policy. The gated
    RMSNorm normalises each of the G groups of `d_inner / G` channels, as
    the reference `Mamba2` module does (its `Mamba2Simple` and mambapy
    normalise all `d_inner` channels at once; the same for `ngroups=1`).

    Initialisation as in the reference: A ~ U[`A_init_range`] per head
    (stored as `A_log`), dt_bias = softplus^-1(dt) with dt log-uniform in
    [`dt_min`, `dt_max`] and floored at `dt_init_floor`, D = 1. `A_log`,
    `dt_bias` and `D_skip` are float32 SSM weights with no weight decay
    under `keras_ssm.optimizers.ssm_adamw`.

    `prenorm=True` (default) is the pre-norm residual of Mamba; `False`
    normalises after the residual, Norm(u + ...). `bidirectional=True` (for
    classification) adds a second conv + SSM that reads the sequence
    reversed and averages the two `y` before the gate; such a block has no
    `step`. A mask zeroes padded steps before the conv and gives them dt =
    0 and x = 0, so they leave the state unchanged.

    Run one step at a time with `get_initial_state` / `step`: the state is
    the last `d_conv - 1` conv inputs and the SSM state, `(batch, H,
    headdim, N)`.

    Args:
        d_state: state size N per head (reference `Mamba2`: 128).
        d_conv: width of the causal depthwise convolution.
        expand: d_inner / channels, the reference's ratio (default 2 when
            `intermediate_dim` is not given).
        headdim: channels per head; d_inner must be a multiple of it.
        ngroups: number of groups of heads sharing B and C; the number of
            heads must be a multiple of it.
        chunk_size: SSD chunk length; `None` = the per-backend default
            (`keras_ssm.ops.ssd.default_ssd_chunk_size()`: 64 on the CPU,
            chosen by timing 32..256 on a loaded 2-core CPU; 256, the
            reference's value, on accelerators).
        intermediate_dim: the inner width d_inner as an absolute number;
            `None` (default) means `expand * channels`. Given together with
            `expand`, the two must agree once the channels are known.
        A_init_range: `(low, high)`, 0 < low <= high: range of the initial
            A per head.
        dt_min: lower bound of the initial dt.
        dt_max: upper bound of the initial dt.
        dt_init_floor: smallest initial dt.
        conv_bias: whether the convolution has a bias (reference: True).
        bias: whether in_proj and out_proj have biases (reference: False).
        norm: block norm, "rms" (default), "layer" or "batch".
        prenorm: normalise before (True) or after (False) the residual.
        dropout: dropout rate on the block's output before the residual.
        bidirectional: add a reversed conv + SSM and average (no `step`).
        num_layers: depth of the model, if known: out_proj's initial
            weights are divided by sqrt(num_layers) (GPT-2 style, as in
            `MambaBlock`); `None`: no rescaling.
        **kwargs: layer arguments (`name`, `dtype`, `trainable`).

    Example:

    >>> import keras
    >>> import keras_ssm
    >>> model = keras.Sequential([
    ...     keras.Input((None, 32)),
    ...     keras_ssm.layers.Mamba2Block(d_state=16, headdim=16),
    ...     keras_ssm.layers.Mamba2Block(d_state=16, headdim=16),
    ...     keras.layers.RMSNormalization(),
    ...     keras.layers.Dense(10),
    ... ])
    >>> tuple(model(keras.ops.ones((2, 50, 32))).shape)
    (2, 50, 10)
    """

    def __init__(
        self,
        d_state=128,
        d_conv=4,
        expand=None,
        headdim=64,
        ngroups=1,
        chunk_size=None,
        intermediate_dim=None,
        A_init_range=(1.0, 16.0),
        dt_min=0.001,
        dt_max=0.1,
        dt_init_floor=1e-4,
        conv_bias=True,
        bias=False,
        norm="rms",
        prenorm=True,
        dropout=0.0,
        bidirectional=False,
        num_layers=None,
        **kwargs,
    ):
        super().__init__(**pop_layer_kwargs(kwargs))
        if kwargs:
            raise ArgumentTypeError(
                "Mamba2Block got unknown arguments: "
                f"{', '.join(f'`{key}`' for key in sorted(kwargs))}."
            )
        self.d_state = check_int("d_state", d_state, minimum=1)
        self.d_conv = check_int("d_conv", d_conv, minimum=1)
        self.intermediate_dim = check_int(
            "intermediate_dim", intermediate_dim, minimum=1, allow_none=True
        )
        if expand is None and intermediate_dim is None:
            expand = DEFAULT_EXPAND
        self.expand = check_int("expand", expand, minimum=1, allow_none=True)
        self.headdim = check_int("headdim", headdim, minimum=1)
        self.ngroups = check_int("ngroups", ngroups, minimum=1)
        self.chunk_size = check_int(
            "chunk_size", chunk_size, minimum=1, allow_none=True
        )
        self.num_layers = check_int(
            "num_layers", num_layers, minimum=1, allow_none=True
        )
        self.A_init_range = check_a_init_range(A_init_range)
        self.dt_min = check_float("dt_min", dt_min, minimum=0.0, min_open=True)
        self.dt_max = check_float("dt_max", dt_max, minimum=0.0, min_open=True)
        if self.dt_min > self.dt_max:
            raise ValueError(
                "`dt_min` and `dt_max` must satisfy 0 < dt_min <= dt_max, got "
                f"dt_min={self.dt_min}, dt_max={self.dt_max}."
            )
        self.dt_init_floor = check_float(
            "dt_init_floor", dt_init_floor, minimum=0.0, min_open=True
        )
        self.conv_bias = check_bool("conv_bias", conv_bias)
        self.bias = check_bool("bias", bias)
        self.norm_layer = make_norm(norm, "norm", self.dtype_policy)
        self.norm = norm
        self.prenorm = check_bool("prenorm", prenorm)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        self.dropout = check_dropout("dropout", dropout)
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy
        )

    # -- construction ---------------------------------------------------------

    def _mixer(self, suffix):
        return SSDMixer(
            self.d_inner,
            self.d_state,
            self.d_conv,
            self.headdim,
            self.ngroups,
            chunk_size=self.chunk_size,
            A_init_range=self.A_init_range,
            dt_min=self.dt_min,
            dt_max=self.dt_max,
            dt_init_floor=self.dt_init_floor,
            conv_bias=self.conv_bias,
            dtype=self.dtype_policy,
            name="mixer" + suffix,
        )

    def build(self, input_shape):
        channels = self._validate_input_shape(input_shape)
        self.channels = channels
        d_inner = resolve_inner_width(
            self.intermediate_dim, self.expand, channels
        )
        if d_inner % self.headdim:
            raise ValueError(
                f"The inner width ({d_inner}: `intermediate_dim`, or `expand`"
                f" x {channels} channels) must be a multiple of `headdim` "
                f"({self.headdim})."
            )
        num_heads = d_inner // self.headdim
        if num_heads % self.ngroups:
            raise ValueError(
                f"The number of heads ({num_heads} = {d_inner} / `headdim` "
                f"{self.headdim}) must be a multiple of `ngroups` "
                f"({self.ngroups})."
            )
        self.d_inner = d_inner
        self.num_heads = num_heads
        self.norm_layer.build(input_shape)
        groups_width = 2 * self.ngroups * self.d_state
        self.in_proj = keras.layers.Dense(
            2 * d_inner + groups_width + num_heads,
            use_bias=self.bias,
            dtype=self.dtype_policy,
            name="in_proj",
        )
        self.in_proj.build(input_shape)
        xbc_shape = tuple(input_shape[:-1]) + (d_inner + groups_width,)
        self.mixer = self._mixer("")
        self.mixer.build(xbc_shape)
        if self.bidirectional:
            self.mixer_backward = self._mixer("_backward")
            self.mixer_backward.build(xbc_shape)
        self.gate_norm_scale = self.add_weight(
            name="gate_norm_scale",
            shape=(d_inner,),
            initializer="ones",
            dtype="float32",
            autocast=False,
        )
        self.out_proj = keras.layers.Dense(
            channels,
            use_bias=self.bias,
            dtype=self.dtype_policy,
            name="out_proj",
        )
        self.out_proj.build(tuple(input_shape[:-1]) + (d_inner,))
        if self.num_layers:
            kernel = self.out_proj.kernel
            kernel.assign(kernel / ops.sqrt(float(self.num_layers)))

    # -- the block ------------------------------------------------------------

    def _split_projection(self, projected):
        d_inner = self.d_inner
        xbc_end = 2 * d_inner + 2 * self.ngroups * self.d_state
        z = projected[..., :d_inner]
        xbc = projected[..., d_inner:xbc_end]
        dt_raw = projected[..., xbc_end:]
        return z, xbc, dt_raw

    def _gated_norm(self, y, z):
        """RMSNorm(y * SiLU(z)) over groups of d_inner / ngroups, float32."""
        gated = y * ops.silu(ops.cast(z, "float32"))
        shape = tuple(ops.shape(gated))
        group_width = self.d_inner // self.ngroups
        grouped = ops.reshape(gated, shape[:-1] + (self.ngroups, group_width))
        mean_square = ops.mean(ops.square(grouped), axis=-1, keepdims=True)
        grouped = grouped * ops.rsqrt(mean_square + GATED_NORM_EPSILON)
        normed = ops.reshape(grouped, shape)
        return ops.cast(normed * self.gate_norm_scale, self.compute_dtype)

    def call(self, inputs, mask=None, training=None):
        self._check_call_shape(inputs, self.channels)
        inputs = self._cast_inputs(inputs)
        if self._is_empty(inputs):
            return inputs
        return self._unless_empty_at_run_time(
            inputs, lambda: self._block(inputs, mask, training)
        )

    def _block(self, inputs, mask, training):
        """The block's output for inputs of a nonzero length."""
        if self.prenorm:
            h = self.norm_layer(inputs, training=training)
        else:
            h = inputs
        z, xbc, dt_raw = self._split_projection(self.in_proj(h))
        y = self.mixer(xbc, dt_raw, mask=mask)
        if self.bidirectional:
            flip_mask = None if mask is None else ops.flip(mask, axis=1)
            y_backward = self.mixer_backward(
                ops.flip(xbc, axis=1), ops.flip(dt_raw, axis=1), mask=flip_mask
            )
            y = 0.5 * (y + ops.flip(y_backward, axis=1))
        out = self.out_proj(self._gated_norm(y, z))
        out = inputs + self.dropout_layer(out, training=training)
        if not self.prenorm:
            out = self.norm_layer(out, training=training)
        return self.apply_mask(out, mask)

    # -- recurrent mode -------------------------------------------------------

    def get_initial_state(self, batch_size):
        """(conv_state, ssm_state): the last d_conv - 1 conv inputs
        `(batch, d_conv - 1, d_inner + 2 * ngroups * d_state)` and the SSM
        state `(batch, num_heads, headdim, d_state)`, float32."""
        self._require_built()
        return self.mixer.get_initial_state(batch_size)

    def step(self, inputs_t, state):
        """One recurrent step of the block; equals `call` over a sequence.

        Args:
            inputs_t: tensor of shape `(batch, channels)`.
            state: `(conv_state, ssm_state)` from `get_initial_state`.

        Returns:
            `(outputs_t, new_state)`, outputs of shape `(batch, channels)`.
        """
        self._require_built()
        if self.bidirectional:
            raise ValueError(
                "Mamba2Block.step is only defined for the causal block; this "
                "one has bidirectional=True."
            )
        self._check_step_shape(inputs_t, self.channels)
        inputs_t = self._cast_inputs(inputs_t)
        if self.prenorm:
            h = self.norm_step(self.norm_layer, inputs_t)
        else:
            h = inputs_t
        z, xbc, dt_raw = self._split_projection(self.in_proj(h))
        y, state = self.mixer.step(xbc, dt_raw, state)
        out = inputs_t + self.out_proj(self._gated_norm(y, z))
        if not self.prenorm:
            out = self.norm_step(self.norm_layer, out)
        return out, state

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "d_state": self.d_state,
                "d_conv": self.d_conv,
                "expand": self.expand,
                "headdim": self.headdim,
                "ngroups": self.ngroups,
                "chunk_size": self.chunk_size,
                "intermediate_dim": self.intermediate_dim,
                "A_init_range": list(self.A_init_range),
                "dt_min": self.dt_min,
                "dt_max": self.dt_max,
                "dt_init_floor": self.dt_init_floor,
                "conv_bias": self.conv_bias,
                "bias": self.bias,
                "norm": self.norm,
                "prenorm": self.prenorm,
                "dropout": self.dropout,
                "bidirectional": self.bidirectional,
                "num_layers": self.num_layers,
            }
        )
        return config
