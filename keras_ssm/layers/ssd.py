"""`SSD`: the token mixer of Mamba-2 (Dao & Gu, ICML 2024).

    (xBC, dt_raw) = inputs                      as Mamba-2's in_proj lays them
    (x, B, C) = SiLU(causal depthwise conv(xBC))
    dt = clip(softplus(dt_raw + dt_bias), *time_step_limit)   one per head
    y = SSD(x, dt, A = -exp(A_log), B, C) + D x               per head

SSD is `keras_ssm.ops.ssd`: the selective SSM with a scalar decay per head,
computed by chunks.
"""

import math

import keras
from keras import ops

from keras_ssm.layers.base import SequenceLayer
from keras_ssm.layers.base import causal_conv_step
from keras_ssm.layers.selective_ssm import dt_bias_initializer
from keras_ssm.ops.ssd import ssd
from keras_ssm.utils.validation import ArgumentTypeError
from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_dt_range
from keras_ssm.utils.validation import check_float
from keras_ssm.utils.validation import check_int

NO_TIME_STEP_LIMIT = (0.0, math.inf)


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


def check_time_step_limit(value):
    """`time_step_limit` as `(low, high)`, 0 <= low < high <= inf."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ArgumentTypeError(
            "`time_step_limit` must be a pair (low, high) of numbers with "
            f"0 <= low < high (high may be inf), got {value!r}."
        )
    low = check_float("time_step_limit[0]", value[0], minimum=0.0)
    high = check_float("time_step_limit[1]", value[1], finite=False)
    if not low < high:
        raise ValueError(
            "`time_step_limit` must be a pair (low, high) with 0 <= low < "
            f"high, got {value!r}."
        )
    return low, high


def a_log_initializer(low, high):
    """A_log = log(A) with A ~ U[low, high] per head (A = -exp(A_log))."""

    def initializer(shape, dtype=None):
        a = keras.random.uniform(shape, low, high, dtype="float32")
        return ops.cast(ops.log(a), dtype or "float32")

    return initializer


@keras.saving.register_keras_serializable(package="keras_ssm")
class SSD(SequenceLayer):
    """Mamba-2's mixer: causal conv, SiLU and the SSD recurrence per head.

    From Dao & Gu, *Transformers are SSMs: Generalized Models and Efficient
    Algorithms Through Structured State Space Duality*, ICML 2024. The
    input is the part of Mamba-2's input projection that feeds the SSM, in
    its layout: `xBC` (the inner width `d_inner`, then B and C of
    `ngroups * d_state` each) followed by one raw step size per head; the
    number of heads `H = d_inner / headdim` follows from the input width
    `d_inner + 2 * ngroups * d_state + H`. For each head,

        x, B, C = SiLU(conv(xBC))           causal depthwise, width d_conv
        dt = clip(softplus(dt_raw + dt_bias), *time_step_limit)
        h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T     (headdim, d_state)
        y_t = h_t C_t + D x_t

    with A = -exp(A_log) a scalar per head and B, C shared by the heads of
    a group (head i uses group i // (H / ngroups)). The output is `y`,
    `(batch, length, d_inner)`, float32 under every dtype policy: the
    recurrence runs as the chunked SSD algorithm (`keras_ssm.ops.ssd`) in
    float32. `A_log`, `dt_bias` and `D_skip` are float32 SSM weights (no
    weight decay under `keras_ssm.optimizers.ssm_adamw`).

    A mask zeroes padded steps before the conv and gives them x = 0 and
    dt = 0, so they leave the state unchanged. `get_initial_state` /
    `step` run the mixer one step at a time; the state is the last
    `d_conv - 1` conv inputs and the SSM state `(batch, H, headdim,
    d_state)`.

    Args:
        d_state: state size N per head (reference: 128).
        headdim: channels per head.
        ngroups: groups of heads sharing B and C.
        d_conv: width of the causal depthwise convolution.
        chunk_size: SSD chunk length; `None` = the per-backend default
            (`keras_ssm.ops.ssd.default_ssd_chunk_size()`: 64 on the CPU,
            chosen by timing 32..256 on a loaded 2-core CPU; 256, the
            reference's value, on accelerators).
        A_init_range: `(low, high)`, 0 < low <= high: range of the initial
            A per head.
        dt_min: lower bound of the initial dt.
        dt_max: upper bound of the initial dt.
        dt_init_floor: smallest initial dt.
        time_step_limit: `(low, high)`: dt is clipped to this range after
            the softplus, as the reference does (`(0, inf)`, the default,
            clips nothing).
        conv_bias: whether the convolution has a bias (reference: True).
        **kwargs: layer arguments (`name`, `dtype`, `trainable`).

    Example:

    >>> layer = keras_ssm.layers.SSD(d_state=16, headdim=8)
    >>> # d_inner 32 (4 heads): 32 + 2 * 16 + 4 input channels.
    >>> y = layer(keras.random.normal((2, 50, 68)))  # (2, 50, 32)
    >>> state = layer.get_initial_state(2)
    >>> y_t, state = layer.step(keras.random.normal((2, 68)), state)
    """

    config_arguments = (
        "d_state",
        "headdim",
        "ngroups",
        "d_conv",
        "chunk_size",
        "A_init_range",
        "dt_min",
        "dt_max",
        "dt_init_floor",
        "time_step_limit",
        "conv_bias",
    )

    def __init__(
        self,
        d_state=128,
        headdim=64,
        ngroups=1,
        d_conv=4,
        chunk_size=None,
        A_init_range=(1.0, 16.0),
        dt_min=0.001,
        dt_max=0.1,
        dt_init_floor=1e-4,
        time_step_limit=NO_TIME_STEP_LIMIT,
        conv_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.d_state = check_int("d_state", d_state, minimum=1)
        self.headdim = check_int("headdim", headdim, minimum=1)
        self.ngroups = check_int("ngroups", ngroups, minimum=1)
        self.d_conv = check_int("d_conv", d_conv, minimum=1)
        self.chunk_size = check_int(
            "chunk_size", chunk_size, minimum=1, allow_none=True
        )
        self.A_init_range = check_a_init_range(A_init_range)
        self.dt_min, self.dt_max = check_dt_range(dt_min, dt_max, strict=False)
        self.dt_init_floor = check_float(
            "dt_init_floor", dt_init_floor, minimum=0.0, min_open=True
        )
        self.time_step_limit = check_time_step_limit(time_step_limit)
        self.conv_bias = check_bool("conv_bias", conv_bias)

    def build(self, input_shape):
        width = self._validate_input_shape(input_shape)
        groups_width = 2 * self.ngroups * self.d_state
        num_heads, remainder = divmod(width - groups_width, self.headdim + 1)
        if num_heads < 1 or remainder:
            raise ValueError(
                f"SSD expects inputs of width d_inner + 2 * ngroups * "
                f"d_state + num_heads with d_inner = num_heads * headdim "
                f"(ngroups={self.ngroups}, d_state={self.d_state}, "
                f"headdim={self.headdim}); got width {width}."
            )
        if num_heads % self.ngroups:
            raise ValueError(
                f"The number of heads ({num_heads}) must be a multiple of "
                f"`ngroups` ({self.ngroups})."
            )
        self.num_heads = num_heads
        self.intermediate_dim = num_heads * self.headdim
        self.conv_dim = self.intermediate_dim + groups_width
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

    def step_size(self, dt_raw):
        """dt = softplus(dt_raw + dt_bias), clipped to `time_step_limit`."""
        dt = ops.softplus(ops.cast(dt_raw, "float32") + self.dt_bias)
        if self.time_step_limit != NO_TIME_STEP_LIMIT:
            dt = ops.clip(dt, *self.time_step_limit)
        return dt

    def call(self, inputs, mask=None):
        return self.scan(inputs, mask)

    def scan(self, inputs, mask=None, return_final_state=False):
        """The mixer over a sequence, optionally with its final SSM state.

        Args:
            inputs: `(batch, length, channels)` in the input's layout.
            mask: optional `(batch, length)` bools; padded steps leave the
                state unchanged.
            return_final_state: also return the SSM state after the last
                step, `(batch, num_heads, headdim, d_state)`, the state
                that `step` continues from (e.g. after a prompt).

        Returns:
            `y` of shape `(batch, length, d_inner)`, or `(y, ssm_state)`.
        """
        inputs = self._cast_inputs(inputs)
        xbc = self.apply_mask(inputs[..., : self.conv_dim], mask)
        dt_raw = inputs[..., self.conv_dim :]
        xbc = ops.cast(ops.silu(self.conv(xbc)), "float32")
        xbc = self.apply_mask(xbc, mask)  # x = 0 at padded steps
        x, B, C = self._split(xbc)
        dt = self.apply_mask(self.step_size(dt_raw), mask)  # state passes
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        heads = ops.reshape(x, (batch, length, self.num_heads, self.headdim))
        y = ssd(
            heads,
            dt,
            self.A(),
            B,
            C,
            chunk_size=self.chunk_size,
            return_final_state=return_final_state,
        )
        if return_final_state:
            y, state = y
        y = y + heads * self.D_skip[:, None]
        y = ops.reshape(y, (batch, length, self.intermediate_dim))
        return (y, state) if return_final_state else y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.intermediate_dim,)

    def compute_output_spec(self, inputs, mask=None):
        shape = self.compute_output_shape(inputs.shape)
        return keras.KerasTensor(shape, dtype="float32")

    def get_initial_state(self, batch_size):
        """(conv_state, ssm_state), zeros: `(batch, d_conv - 1, d_inner + 2
        * ngroups * d_state)` and `(batch, num_heads, headdim, d_state)`."""
        self._require_built()
        conv_state = ops.zeros(
            (batch_size, self.d_conv - 1, self.conv_dim), self.compute_dtype
        )
        ssm_state = ops.zeros(
            (batch_size, self.num_heads, self.headdim, self.d_state), "float32"
        )
        return conv_state, ssm_state

    def step(self, inputs_t, state):
        """One step: the conv window, then H = exp(dt A) H + dt x B^T.

        Args:
            inputs_t: tensor of shape `(batch, channels)`, the input's
                layout (xBC, then dt_raw).
            state: `(conv_state, ssm_state)` from `get_initial_state`.

        Returns:
            `(y_t, new_state)`, `y_t` of shape `(batch, d_inner)`.
        """
        self._check_step_inputs(inputs_t)
        inputs_t = self._cast_inputs(inputs_t)
        conv_state, ssm_state = state
        xbc, conv_state = causal_conv_step(
            self.conv, conv_state, inputs_t[:, : self.conv_dim]
        )
        x, B, C = self._split(ops.cast(ops.silu(xbc), "float32"))
        dt = self.step_size(inputs_t[:, self.conv_dim :])
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
        return y, (conv_state, ssm_state)
