"""Vandermonde products sum_m c_m z_m^l, the kernels of diagonal SSMs."""

import math

from keras import ops

from keras_ssm.ops import complex as cplx


def vandermonde_real(coeffs, log_base, length):
    """Re sum_m coeffs[..., h, m] * exp(l * log_base[h, m]), l = 0..L-1.

    The direct product materialises a (channels, modes, length) tensor of
    powers. With a static `length`, it is computed blockwise instead: write
    l = a c + b with c ~ sqrt(L); then z^l = z^(a c) z^b and the sum over m
    becomes a batched matrix product of a (modes, c) and a (modes, L/c)
    table, so memory is O(modes sqrt(L)) per channel and the work runs on
    matmul kernels. Both paths compute each power as exp(l log z), so they
    agree to float32 rounding.

    Args:
        coeffs: complex pair of tensors `(..., channels, modes)`.
        log_base: complex pair `(channels, modes)`, log of the bases z.
        length: number of powers L (int, or a scalar tensor).

    Returns:
        Real tensor `(..., channels, length)`, float32.

    Example:

    >>> c = (ops.ones((1, 2)), ops.zeros((1, 2)))
    >>> log_z = (ops.full((1, 2), -0.1), ops.zeros((1, 2)))
    >>> np.round(ops.convert_to_numpy(vandermonde_real(c, log_z, 4)), 4)
    array([[2.    , 1.8097, 1.6375, 1.4816]], dtype=float32)
    """
    coeffs = cplx.cast_pair(coeffs, "float32")
    log_base = cplx.cast_pair(log_base, "float32")
    if not isinstance(length, int) or length < 16:
        return _direct(coeffs, log_base, length)
    block = int(math.ceil(math.sqrt(length)))
    blocks = int(math.ceil(length / block))
    inner = ops.cast(ops.arange(block), "float32")
    outer = ops.cast(ops.arange(blocks) * block, "float32")
    low = _powers(log_base, inner)  # (channels, modes, block)
    high = _powers(log_base, outer)  # (channels, modes, blocks)
    left = cplx.cmul(
        (coeffs[0][..., None], coeffs[1][..., None]), low
    )  # (..., channels, modes, block)
    # Re(left * high) summed over modes: [a, b] -> index a * block + b.
    out = ops.einsum("...hmb,hma->...hab", left[0], high[0]) - ops.einsum(
        "...hmb,hma->...hab", left[1], high[1]
    )
    shape = tuple(out.shape[:-2]) + (blocks * block,)
    return ops.reshape(out, shape)[..., :length]


def _powers(log_base, steps):
    return cplx.cexp(
        (log_base[0][..., None] * steps, log_base[1][..., None] * steps)
    )


def _direct(coeffs, log_base, length):
    steps = ops.cast(ops.arange(length), "float32")
    powers = _powers(log_base, steps)  # (channels, modes, length)
    return ops.einsum("...hm,hml->...hl", coeffs[0], powers[0]) - ops.einsum(
        "...hm,hml->...hl", coeffs[1], powers[1]
    )
