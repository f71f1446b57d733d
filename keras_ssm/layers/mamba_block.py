"""The Mamba block (Gu & Dao, 2023) with a pre-norm residual wrapper."""

import keras
from keras import ops

from keras_ssm.layers.base import causal_conv_step
from keras_ssm.layers.initializers import torch_conv_bias
from keras_ssm.layers.initializers import torch_linear_kernel
from keras_ssm.layers.residual import ResidualBlock
from keras_ssm.layers.residual import pop_block_kwargs
from keras_ssm.layers.selective_ssm import SelectiveSSM
from keras_ssm.layers.selective_ssm import check_dt_rank
from keras_ssm.layers.selective_ssm import resolve_dt_rank
from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_int

# d_inner / d_model when neither `expand` nor `intermediate_dim` is given.
DEFAULT_EXPAND = 2


def resolve_inner_width(intermediate_dim, expand, channels):
    """The Mamba blocks' d_inner: `intermediate_dim`, else expand * channels.

    Given both, they must agree for inputs of `channels` channels.
    """
    if intermediate_dim is None:
        return expand * channels
    if expand is not None and expand * channels != intermediate_dim:
        raise ValueError(
            f"`intermediate_dim={intermediate_dim}` and `expand={expand}` "
            f"disagree for inputs of {channels} channels (expand * channels "
            f"= {expand * channels}); give one of them."
        )
    return intermediate_dim


@keras.saving.register_keras_serializable(package="keras_ssm")
class MambaBlock(ResidualBlock):
    """Mamba block: x + out_proj(SSM(SiLU(conv(x_in))) * SiLU(z)).

    With `(x_in, z) = in_proj(Norm(x))` split into two halves of
    `d_inner = intermediate_dim` (default `expand * d_model`) channels,
    `conv` a causal depthwise Conv1D of width `d_conv`
    (`Conv1D(groups=d_inner, padding="causal")`) and SSM a
    `SelectiveSSM` with `dt_rank = ceil(d_model / 16)` by default. d_model
    is the input's last axis. The residual wrapper makes blocks stackable in
    `keras.Sequential`; add a final norm after the last block, as Mamba does.

    `bidirectional=True` (for classification) adds a second conv + SSM that
    reads the sequence reversed; the two outputs are averaged before the
    gate (an average rather than a sum keeps the magnitude, which avoids
    the overflows users report under mixed precision). `in_proj`,
    `out_proj` and the gate are shared. Such a block has no `step`.

    With `prenorm=False` the block is post-norm: Norm(x + out_proj(...)),
    the norm after the residual addition and none before `in_proj`.

    A mask zeroes padded steps before the conv and skips them in the SSM,
    so the outputs at valid steps equal those of the unpadded sequence.

    Initialisation follows Mamba (`state-spaces/mamba`: `mamba_simple.py`
    and `_init_weights` in `mixer_seq_simple.py`), i.e. PyTorch's defaults:
    `in_proj`, `out_proj` and the SSM's `x_proj` ~ U(+-1/sqrt(fan_in)) with
    zero biases; the depthwise conv's weight and bias ~ U(+-1/sqrt(d_conv))
    (its fan-in is the width `d_conv`); `dt_proj`, `dt_bias`, `A_log` and
    `D_skip` as in `SelectiveSSM`.

    Args:
        d_state: state size N of the selective SSM.
        d_conv: width of the causal depthwise convolution.
        expand: d_inner / d_model, Mamba's ratio (default 2 when
            `intermediate_dim` is not given).
        dt_rank: rank of the dt projection; `"auto"` = ceil(d_model / 16).
        norm: "rms" (default), "layer" or "batch".
        bidirectional: add a reversed conv + SSM and average (no `step`).
        dropout: dropout rate on the block's output before the residual.
        conv_bias: whether the convolution has a bias (Mamba: True).
        bias: whether in_proj and out_proj have biases (Mamba: False).
        num_layers: depth of the model this block sits in, if known: Mamba
            divides out_proj's initial weights by sqrt(num_layers) (the
            GPT-2 pre-norm residual rescaling, one residual per layer), so
            that the variance of the residual stream does not grow with
            depth. `None`: no rescaling.
        intermediate_dim: the inner width d_inner as an absolute number;
            `None` (default) means `expand * d_model`. Given together with
            `expand`, the two must agree once d_model is known.
        prenorm: normalise before `in_proj` (True, Mamba's block) or after
            the residual addition (False).
        norm_epsilon: epsilon of the norm (`None`: 1e-5, Mamba's value;
            the pretrained checkpoints give theirs as `layer_norm_epsilon`).
        **ssm_kwargs: other arguments of `SelectiveSSM` (`dt_min`,
            `dt_max`, `dt_init_floor`, `dt_scale`, `scan_method`,
            `chunk_size`), with the usual layer arguments (`name`, `dtype`).

    Example:

    A language model over a vocabulary of 1000 tokens; with two blocks,
    `num_layers=2` scales their output projections as Mamba does:

    >>> model = keras.Sequential([
    ...     keras.Input((None,), dtype="int32"),
    ...     keras.layers.Embedding(1000, 64),
    ...     keras_ssm.layers.MambaBlock(d_state=16, num_layers=2),
    ...     keras_ssm.layers.MambaBlock(d_state=16, num_layers=2),
    ...     keras.layers.RMSNormalization(),
    ...     keras.layers.Dense(1000),  # next-token logits
    ... ])
    """

    config_arguments = (
        "d_state",
        "d_conv",
        "expand",
        "dt_rank",
        "conv_bias",
        "bias",
        "num_layers",
        "intermediate_dim",
    )

    def __init__(
        self,
        d_state=16,
        d_conv=4,
        expand=None,
        dt_rank="auto",
        norm="rms",
        conv_bias=True,
        bias=False,
        num_layers=None,
        intermediate_dim=None,
        **kwargs,
    ):
        super().__init__(norm=norm, **pop_block_kwargs(kwargs))
        self.d_state = check_int("d_state", d_state, minimum=1)
        self.d_conv = check_int("d_conv", d_conv, minimum=1)
        self.intermediate_dim = check_int(
            "intermediate_dim", intermediate_dim, minimum=1, allow_none=True
        )
        if expand is None and intermediate_dim is None:
            expand = DEFAULT_EXPAND
        self.expand = check_int("expand", expand, minimum=1, allow_none=True)
        self.dt_rank = check_dt_rank(dt_rank)
        self.conv_bias = check_bool("conv_bias", conv_bias)
        self.bias = check_bool("bias", bias)
        self.num_layers = check_int(
            "num_layers", num_layers, minimum=1, allow_none=True
        )
        # Validate the SSM arguments now rather than at build time, and keep
        # their validated (plain Python) values for the SSMs and get_config.
        self.keep_mixer_arguments(
            SelectiveSSM(d_state=self.d_state, **kwargs), kwargs
        )

    def _conv_and_ssm(self, suffix):
        conv = keras.layers.Conv1D(
            self.d_inner,
            self.d_conv,
            padding="causal",
            groups=self.d_inner,
            use_bias=self.conv_bias,
            kernel_initializer=torch_linear_kernel(),
            bias_initializer=torch_conv_bias(self.d_conv),
            dtype=self.dtype_policy,
            name="conv" + suffix,
        )
        ssm = SelectiveSSM(
            d_state=self.d_state,
            dt_rank=self.resolved_dt_rank,
            dtype=self.dtype_policy,
            name="ssm" + suffix,
            **self.mixer_arguments,
        )
        return conv, ssm

    def build_mixer(self, input_shape):
        d_model = self.channels
        self.d_inner = resolve_inner_width(
            self.intermediate_dim, self.expand, d_model
        )
        self.resolved_dt_rank = resolve_dt_rank(self.dt_rank, d_model)
        inner_shape = tuple(input_shape[:-1]) + (self.d_inner,)
        self.in_proj = keras.layers.Dense(
            2 * self.d_inner,
            use_bias=self.bias,
            kernel_initializer=torch_linear_kernel(),
            dtype=self.dtype_policy,
            name="in_proj",
        )
        self.in_proj.build(input_shape)
        self.conv, self.ssm = self._conv_and_ssm("")
        self.conv.build(inner_shape)
        self.ssm.build(inner_shape)
        if self.bidirectional:
            self.conv_backward, self.ssm_backward = self._conv_and_ssm(
                "_backward"
            )
            self.conv_backward.build(inner_shape)
            self.ssm_backward.build(inner_shape)
        self.out_proj = keras.layers.Dense(
            d_model,
            use_bias=self.bias,
            kernel_initializer=torch_linear_kernel(),
            dtype=self.dtype_policy,
            name="out_proj",
        )
        self.out_proj.build(inner_shape)
        if self.num_layers:
            kernel = self.out_proj.kernel
            kernel.assign(kernel / ops.sqrt(float(self.num_layers)))

    def mix(self, x, mask=None, training=None, dt_scale=None):
        x, z = ops.split(self.in_proj(x), 2, axis=-1)
        x = self.apply_mask(x, mask)  # padded steps look like causal padding

        def direction(conv, ssm):
            def run(x, mask):
                x = ops.silu(conv(x))
                return ssm(x, mask=mask, training=training, dt_scale=dt_scale)

            return run

        forward = direction(self.conv, self.ssm)
        if self.bidirectional:
            backward = direction(self.conv_backward, self.ssm_backward)
            y = self.average_directions(forward, backward, x, mask)
        else:
            y = forward(x, mask)
        return self.out_proj(y * ops.silu(z))

    # -- recurrent mode ------------------------------------------------------

    def mixer_initial_state(self, batch_size):
        """(conv_state, ssm_state): the last d_conv - 1 conv inputs
        `(batch, d_conv - 1, d_inner)` and the SSM state `(batch, d_inner,
        d_state)`."""
        conv_state = ops.zeros(
            (batch_size, self.d_conv - 1, self.d_inner), self.compute_dtype
        )
        return conv_state, self.ssm.get_initial_state(batch_size)

    def mix_step(self, x_t, state, dt_scale=None):
        conv_state, ssm_state = state
        x, z = ops.split(self.in_proj(x_t), 2, axis=-1)
        x, conv_state = causal_conv_step(self.conv, conv_state, x)
        y, ssm_state = self.ssm.step(ops.silu(x), ssm_state, dt_scale)
        return self.out_proj(y * ops.silu(z)), (conv_state, ssm_state)
