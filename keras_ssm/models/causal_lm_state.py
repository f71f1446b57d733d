"""Prefill: a block's parallel form that also hands on its recurrent state.

`MambaBlock` and `Mamba2Block` compute a sequence with their parallel form
(`call`) and one step at a time with `step`, but `call` returns no state.
Generation needs both: the prompt goes through the parallel form, and
decoding continues with `step` from the state the prompt left. The
functions here run one block over `(batch, length, channels)` with the
block's own sublayers and weights, exactly as its `call` does, and return
the outputs together with the `(conv_state, ssm_state)` that `step` takes.

Steps where `mask` is False leave the state unchanged (their conv input
and step size are zeroed), so the state returned is the one after the last
unmasked step when the unmasked steps come first. `end` is that number of
unmasked leading steps, the same for every row.
"""

import math

from keras import ops

from keras_ssm.ops.ssd import ssd

NO_TIME_STEP_LIMIT = (0.0, math.inf)
DEFAULT_NORM_EPSILON = 1e-5


def block_norm_epsilon(block):
    """The epsilon of a block's gated norm (the blocks' default if unset)."""
    epsilon = getattr(block, "norm_epsilon", None)
    return DEFAULT_NORM_EPSILON if epsilon is None else epsilon


def block_time_step_limit(block):
    """A Mamba-2 block's `(low, high)` bounds on dt ((0, inf) if unset)."""
    limit = getattr(block, "time_step_limit", None)
    return NO_TIME_STEP_LIMIT if limit is None else tuple(limit)


def _mask(x, mask):
    return x * ops.cast(ops.expand_dims(mask, -1), x.dtype)


def conv_window(conv_inputs, end, width):
    """The `width` conv inputs before step `end`, zeros before the start.

    This is the conv state of `step`: `(batch, width, channels)`.
    """
    batch = ops.shape(conv_inputs)[0]
    channels = ops.shape(conv_inputs)[-1]
    zeros = ops.zeros((batch, width, channels), conv_inputs.dtype)
    padded = ops.concatenate([zeros, conv_inputs], axis=1)
    end = ops.cast(end, "int32")
    zero = ops.zeros((), "int32")
    return ops.slice(padded, [zero, end, zero], [batch, width, channels])


def selective_final_state(u, dt, A, B):
    """The selective SSM's state after the last step, in closed form.

    h_T = sum_t exp(A sum_{s > t} dt_s) dt_t B_t u_t, from the inputs `u`
    and steps `dt` `(batch, length, d_inner)`, `A` `(d_inner, d_state)` and
    `B` `(batch, length, d_state)`, all float32. The decay after each step
    is summed from the end (a reverse cumulative sum), so long prompts lose
    no precision to the difference of two large running sums.
    """
    inclusive = ops.flip(ops.cumsum(ops.flip(dt, axis=1), axis=1), axis=1)
    after = inclusive - dt  # sum of dt over the steps after t
    decay = ops.exp(after[..., None] * A)  # (batch, length, d_inner, N)
    drive = (dt * u)[..., None] * B[:, :, None, :]
    return ops.sum(decay * drive, axis=1)


def mamba_prefill(block, inputs, mask, end):
    """`MambaBlock` over a sequence: `(outputs, (conv_state, ssm_state))`."""
    x = block.norm_layer(inputs)
    x, z = ops.split(block.in_proj(x), 2, axis=-1)
    x = _mask(x, mask)
    conv_state = conv_window(x, end, block.d_conv - 1)
    x = ops.silu(block.conv(x))
    ssm = block.ssm
    y = ssm(x, mask=mask)
    dt, B, _ = ssm.selection(x)
    dt = _mask(dt, mask)
    u = _mask(ops.cast(x, "float32"), mask)
    ssm_state = selective_final_state(u, dt, ssm.A(), B)
    outputs = inputs + block.out_proj(y * ops.silu(z))
    return _mask(outputs, mask), (conv_state, ssm_state)


def gated_rms_norm(y, z, scale, groups, epsilon):
    """RMSNorm(y * SiLU(z)) over `groups` groups of channels, float32."""
    gated = ops.cast(y, "float32") * ops.silu(ops.cast(z, "float32"))
    shape = tuple(ops.shape(gated))
    width = shape[-1] // groups
    grouped = ops.reshape(gated, shape[:-1] + (groups, width))
    mean_square = ops.mean(ops.square(grouped), axis=-1, keepdims=True)
    grouped = grouped * ops.rsqrt(mean_square + epsilon)
    return ops.reshape(grouped, shape) * ops.cast(scale, "float32")


def mamba2_prefill(block, inputs, mask, end):
    """`Mamba2Block` over a sequence: `(outputs, (conv_state, ssm_state))`."""
    mixer = block.mixer
    d_inner, groups, n = block.d_inner, block.ngroups, block.d_state
    heads, headdim = block.num_heads, block.headdim
    projected = block.in_proj(block.norm_layer(inputs))
    xbc_end = 2 * d_inner + 2 * groups * n
    z = projected[..., :d_inner]
    xbc = _mask(projected[..., d_inner:xbc_end], mask)
    dt_raw = projected[..., xbc_end:]
    conv_state = conv_window(xbc, end, block.d_conv - 1)
    xbc = _mask(ops.cast(ops.silu(mixer.conv(xbc)), "float32"), mask)
    batch, length = ops.shape(xbc)[0], ops.shape(xbc)[1]
    x = ops.reshape(xbc[..., :d_inner], (batch, length, heads, headdim))
    B = ops.reshape(
        xbc[..., d_inner : d_inner + groups * n], (batch, length, groups, n)
    )
    C = ops.reshape(
        xbc[..., d_inner + groups * n :], (batch, length, groups, n)
    )
    dt = ops.softplus(ops.cast(dt_raw, "float32") + mixer.dt_bias)
    low, high = block_time_step_limit(block)
    if (low, high) != NO_TIME_STEP_LIMIT:
        dt = ops.clip(dt, low, high)
    dt = _mask(dt, mask)
    y, ssm_state = ssd(
        x,
        dt,
        mixer.A(),
        B,
        C,
        chunk_size=mixer.chunk_size,
        return_final_state=True,
    )
    y = y + x * mixer.D_skip[:, None]
    y = ops.reshape(y, (batch, length, d_inner))
    normed = gated_rms_norm(
        y, z, block.gate_norm_scale, groups, block_norm_epsilon(block)
    )
    outputs = inputs + block.out_proj(ops.cast(normed, block.compute_dtype))
    return _mask(outputs, mask), (conv_state, ssm_state)


PREFILL = {"mamba": mamba_prefill, "mamba2": mamba2_prefill}
