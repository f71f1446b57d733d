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

from keras import ops


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


def mamba_prefill(block, inputs, mask, end):
    """`MambaBlock` over a sequence: `(outputs, (conv_state, ssm_state))`."""
    x = block.norm_layer(inputs)
    x, z = ops.split(block.in_proj(x), 2, axis=-1)
    x = _mask(x, mask)
    conv_state = conv_window(x, end, block.d_conv - 1)
    x = ops.silu(block.conv(x))
    y, ssm_state = block.ssm.scan(x, mask=mask, return_final_state=True)
    outputs = inputs + block.out_proj(y * ops.silu(z))
    return _mask(outputs, mask), (conv_state, ssm_state)


def mamba2_prefill(block, inputs, mask, end):
    """`Mamba2Block` over a sequence: `(outputs, (conv_state, ssm_state))`."""
    projected = block.in_proj(block.norm_layer(inputs))
    z = projected[..., : block.d_inner]
    ssd_inputs = projected[..., block.d_inner :]
    conv_inputs = _mask(ssd_inputs[..., : block.mixer.conv_dim], mask)
    conv_state = conv_window(conv_inputs, end, block.d_conv - 1)
    y, ssm_state = block.mixer.scan(
        ssd_inputs, mask=mask, return_final_state=True
    )
    outputs = inputs + block.out_proj(block.gated_norm(y, z))
    return _mask(outputs, mask), (conv_state, ssm_state)


PREFILL = {"mamba": mamba_prefill, "mamba2": mamba2_prefill}
