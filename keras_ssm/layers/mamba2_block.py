"""The Mamba-2 block (Dao & Gu, ICML 2024): the `SSD` mixer in a residual.

(z, xBC, dt_raw) = in_proj(Norm(u))
y = SSD(xBC, dt_raw)                         see `keras_ssm.layers.SSD`
out = u + out_proj(RMSNorm(y * SiLU(z)))     RMSNorm per group
"""

import keras
from keras import ops

from keras_ssm.layers.mamba_block import DEFAULT_EXPAND
from keras_ssm.layers.mamba_block import resolve_inner_width
from keras_ssm.layers.residual import ResidualBlock
from keras_ssm.layers.residual import pop_block_kwargs
from keras_ssm.layers.ssd import SSD
from keras_ssm.utils.validation import ArgumentTypeError
from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_int

# The gated RMSNorm's epsilon when `norm_epsilon` is not given.
GATED_NORM_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="keras_ssm")
class Mamba2Block(ResidualBlock):
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
        intermediate_dim: the inner width d_inner as an absolute number;
            `None` (default) means `expand * channels`. Given together with
            `expand`, the two must agree once the channels are known.
        norm: block norm, "rms" (default), "layer" or "batch".
        bias: whether in_proj and out_proj have biases (reference: False).
        num_layers: depth of the model, if known: out_proj's initial
            weights are divided by sqrt(num_layers) (GPT-2 style, as in
            `MambaBlock`); `None`: no rescaling.
        prenorm: normalise before (True) or after (False) the residual.
        dropout: dropout rate on the block's output before the residual.
        bidirectional: add a reversed conv + SSM and average (no `step`).
        norm_epsilon: epsilon of the block norm and of the gated RMSNorm
            (`None`: 1e-5; the pretrained checkpoints give theirs as
            `layer_norm_epsilon`).
        **ssd_kwargs: the other arguments of `SSD` (`ngroups`, the number
            of groups of heads sharing B and C, which must divide the
            number of heads; `chunk_size`, `A_init_range`, `dt_min`,
            `dt_max`, `dt_init_floor`, `time_step_limit`, `conv_bias`),
            with the usual layer arguments (`name`, `dtype`, `trainable`).

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

    config_arguments = (
        *SSD.config_arguments,
        "expand",
        "intermediate_dim",
        "bias",
        "num_layers",
    )

    def __init__(
        self,
        d_state=128,
        d_conv=4,
        expand=None,
        headdim=64,
        *,
        intermediate_dim=None,
        norm="rms",
        bias=False,
        num_layers=None,
        **kwargs,
    ):
        super().__init__(norm=norm, **pop_block_kwargs(kwargs))
        unknown = sorted(set(kwargs) - set(SSD.config_arguments))
        if unknown:
            raise ArgumentTypeError(
                "Mamba2Block got unknown arguments: "
                f"{', '.join(f'`{key}`' for key in unknown)}."
            )
        self.intermediate_dim = check_int(
            "intermediate_dim", intermediate_dim, minimum=1, allow_none=True
        )
        if expand is None and intermediate_dim is None:
            expand = DEFAULT_EXPAND
        self.expand = check_int("expand", expand, minimum=1, allow_none=True)
        self.num_layers = check_int(
            "num_layers", num_layers, minimum=1, allow_none=True
        )
        self.bias = check_bool("bias", bias)
        # SSD validates its own arguments now; the mixers themselves are
        # made in `build_mixer`, after `in_proj`, which keeps the order of
        # the weights (and so of saved optimizer states) of earlier versions.
        ssd = SSD(d_state=d_state, headdim=headdim, d_conv=d_conv, **kwargs)
        self.ssd_config = {
            key: getattr(ssd, key) for key in ssd.config_arguments
        }
        # The block exposes the mixer's validated arguments (block.d_state,
        # block.headdim, ...) as its own.
        for key, value in self.ssd_config.items():
            setattr(self, key, value)

    def build_mixer(self, input_shape):
        channels = self.channels
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
        ssd_width = d_inner + 2 * self.ngroups * self.d_state + num_heads
        self.in_proj = keras.layers.Dense(
            d_inner + ssd_width,
            use_bias=self.bias,
            dtype=self.dtype_policy,
            name="in_proj",
        )
        self.in_proj.build(input_shape)
        ssd_shape = tuple(input_shape[:-1]) + (ssd_width,)
        self.mixer = SSD(
            name="mixer", dtype=self.dtype_policy, **self.ssd_config
        )
        self.mixer.build(ssd_shape)
        if self.bidirectional:
            # The same mixer with its own weights, on the reversed sequence.
            self.mixer_backward = SSD(
                name="mixer_backward",
                dtype=self.dtype_policy,
                **self.ssd_config,
            )
            self.mixer_backward.build(ssd_shape)
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

    def gated_norm(self, y, z):
        """RMSNorm(y * SiLU(z)) over groups of d_inner / ngroups, float32."""
        gated = y * ops.silu(ops.cast(z, "float32"))
        shape = tuple(ops.shape(gated))
        group_width = self.d_inner // self.ngroups
        grouped = ops.reshape(gated, shape[:-1] + (self.ngroups, group_width))
        mean_square = ops.mean(ops.square(grouped), axis=-1, keepdims=True)
        epsilon = self.norm_epsilon or GATED_NORM_EPSILON
        grouped = grouped * ops.rsqrt(mean_square + epsilon)
        normed = ops.reshape(grouped, shape)
        return ops.cast(normed * self.gate_norm_scale, self.compute_dtype)

    def mix(self, x, mask=None, training=None):
        projected = self.in_proj(x)
        z = projected[..., : self.d_inner]
        ssd_inputs = projected[..., self.d_inner :]
        if self.bidirectional:
            y = self.average_directions(
                lambda u, m: self.mixer(u, mask=m),
                lambda u, m: self.mixer_backward(u, mask=m),
                ssd_inputs,
                mask,
            )
        else:
            y = self.mixer(ssd_inputs, mask=mask)
        return self.out_proj(self.gated_norm(y, z))

    # -- recurrent mode -------------------------------------------------------

    def mixer_initial_state(self, batch_size):
        """(conv_state, ssm_state): the last d_conv - 1 conv inputs
        `(batch, d_conv - 1, d_inner + 2 * ngroups * d_state)` and the SSM
        state `(batch, num_heads, headdim, d_state)`, float32."""
        return self.mixer.get_initial_state(batch_size)

    def mix_step(self, x_t, state):
        projected = self.in_proj(x_t)
        y, state = self.mixer.step(projected[:, self.d_inner :], state)
        z = projected[:, : self.d_inner]
        return self.out_proj(self.gated_norm(y, z)), state
