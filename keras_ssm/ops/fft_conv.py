"""Long convolutions through the FFT, the training path of every SSM layer."""

import keras
from keras import ops


def next_fast_length(n):
    """Smallest 5-smooth integer (2^a 3^b 5^c) that is >= `n`.

    FFT libraries on every backend are fast on such lengths, and a 5-smooth
    length wastes less padding than the next power of two.
    """
    n = int(n)
    if n <= 1:
        return 1
    best = 1 << (n - 1).bit_length()
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            candidate = power35
            while candidate < n:
                candidate *= 2
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best


def two_sided_kernel(kernel, kernel_backward, fft_length):
    """Lays out a bidirectional kernel on a circle of `fft_length` taps.

    Forward taps sit at lags 0..L-1 (positions 0..L-1); backward tap `j`
    sits at lag -(j+1), i.e. at position `fft_length - 1 - j`, as in the S4
    and ETSMLP references. Requires `fft_length >= 2 L`.
    """
    length = ops.shape(kernel)[-1]
    channels = kernel.shape[0]
    gap = ops.zeros((channels, fft_length - 2 * length), dtype=kernel.dtype)
    return ops.concatenate(
        [kernel, gap, ops.flip(kernel_backward, axis=-1)], axis=-1
    )


def fft_conv(inputs, kernel, kernel_backward=None, spectral_filter=None):
    """Convolves each channel of `inputs` with its own long kernel.

    Computes y[b, t, h] = sum_l kernel[h, l] * u[b, t - l, h] (causal), plus,
    when `kernel_backward` is given, sum_j kernel_backward[h, j] *
    u[b, t + 1 + j, h] (anti-causal taps at lags -1, -2, ...). The FFT runs in
    float32 whatever the compute dtype, with zero padding to a fast length
    >= 2L so that the circular convolution equals the linear one.

    Args:
        inputs: tensor of shape `(batch, length, channels)`.
        kernel: tensor of shape `(channels, length)`, taps at lags 0..L-1.
        kernel_backward: optional tensor of shape `(channels, length)`,
            tap `j` at lag -(j+1).
        spectral_filter: optional callable `num_bins -> (channels | 1,
            num_bins)` real tensor that multiplies the kernel's frequency
            response (e.g. the Sobolev filter of the frequency-bias paper).

    Returns:
        Tensor of shape `(batch, length, channels)` in the dtype of `inputs`.

    Example:

    >>> u = keras.random.normal((2, 100, 4))
    >>> k = keras.random.normal((4, 100))
    >>> tuple(fft_conv(u, k).shape)
    (2, 100, 4)
    """
    out_dtype = inputs.dtype
    length = inputs.shape[1]
    if length is not None and not isinstance(length, int):
        # A symbolic length: JAX export (jax2tf) with a dynamic length.
        return _direct_conv(inputs, kernel, kernel_backward, spectral_filter)
    u = ops.transpose(ops.cast(inputs, "float32"), (0, 2, 1))
    k = ops.cast(kernel, "float32")
    if kernel_backward is not None:
        kernel_backward = ops.cast(kernel_backward, "float32")
    if length is not None:
        fft_length = next_fast_length(2 * length)
        if kernel_backward is not None:
            k = two_sided_kernel(k, kernel_backward, fft_length)
    else:
        # Unknown length (TensorFlow graphs): pad to 2 L + 2 by
        # concatenation, so the FFT length is the padded array's own. The
        # two extra zeros keep that length even (irfft without a length
        # returns an even one) and at least 2, so a length-0 input gives an
        # empty output rather than an FFT of nothing.
        fft_length = None
        length = ops.shape(inputs)[1]
        # Zeros of shape (..., 1) even when the length is 0.
        one = ops.zeros_like(ops.sum(u, axis=-1, keepdims=True))
        u = ops.concatenate([u, ops.zeros_like(u), one, one], axis=-1)
        one = ops.zeros_like(ops.sum(k, axis=-1, keepdims=True))
        gap = ops.concatenate([one, one], axis=-1)
        if kernel_backward is None:
            k = ops.concatenate([k, ops.zeros_like(k), gap], axis=-1)
        else:
            # Backward tap j at position (2 L + 2) - 1 - j.
            flipped = ops.flip(kernel_backward, axis=-1)
            k = ops.concatenate([k, gap, flipped], axis=-1)
    y = native_fft_product(u, k, fft_length, spectral_filter)
    if y is None:
        y = _pair_fft_product(u, k, fft_length, spectral_filter)
    # Without a length, irfft returns 2 (bins - 1): the padded length.
    y = y[..., :length]
    return ops.cast(ops.transpose(y, (0, 2, 1)), out_dtype)


def _pair_fft_product(u, k, fft_length, spectral_filter):
    """`native_fft_product` with (real, imaginary) pairs: any backend."""
    u_re, u_im = ops.rfft(u, fft_length=fft_length)
    k_re, k_im = ops.rfft(k, fft_length=fft_length)
    if spectral_filter is not None:
        num_bins = k_re.shape[-1]
        if num_bins is None:
            num_bins = ops.shape(k_re)[-1]
        gain = ops.cast(spectral_filter(num_bins), "float32")
        k_re, k_im = k_re * gain, k_im * gain
    y_re = u_re * k_re - u_im * k_im
    y_im = u_re * k_im + u_im * k_re
    return ops.irfft((y_re, y_im), fft_length=fft_length)


def native_fft_product(u, k, fft_length, spectral_filter=None):
    """irfft(rfft(u) * rfft(k)) in the backend's complex64, or None.

    The fast path of `fft_conv` on PyTorch and JAX, which have complex
    tensors: each spectral product (and its gradient) is one complex
    multiplication, where the portable path multiplies (real, imaginary)
    pairs, four real products and their backward. On a 2-core CPU that
    makes an S4D layer's training step at length 4096 about 1.4x
    (PyTorch) and 1.75x (JAX) faster. The formula, the float32 precision
    and the padding are the same; TensorFlow and unknown lengths take the
    portable path.

    Args:
        u: float32 tensor `(batch, channels, length)`.
        k: float32 kernel `(channels, n)`, `n <= fft_length`.
        fft_length: the FFT length (an int), or None.
        spectral_filter: optional callable `num_bins -> (channels | 1,
            num_bins)` real gain on the kernel's spectrum.

    Returns:
        The circular convolution `(batch, channels, fft_length)` in
        float32, or None where the backend has no fast path.
    """
    backend = keras.backend.backend()
    if fft_length is None or backend not in ("torch", "jax"):
        return None
    if backend == "torch":
        import torch

        fft = torch.fft
    else:
        import jax.numpy as jnp

        fft = jnp.fft
    u_f = fft.rfft(u, n=fft_length)
    k_f = fft.rfft(k, n=fft_length)
    if spectral_filter is not None:
        k_f = k_f * ops.cast(spectral_filter(k_f.shape[-1]), "float32")
    return fft.irfft(u_f * k_f, n=fft_length)


def _direct_conv(inputs, kernel, kernel_backward, spectral_filter):
    """The same convolution as a scan over the taps, for symbolic lengths.

    An FFT needs a constant length to be lowered (StableHLO's FFT has no
    dynamic form), so a model exported by JAX with a dynamic length cannot
    run one; nor can it differentiate a convolution whose padding depends
    on the length. A scan over the taps, adding tap l times the inputs
    delayed by l steps, has neither problem. It costs O(L^2) per channel
    instead of O(L log L), which serving at moderate lengths can afford.
    """
    if spectral_filter is not None:
        raise ValueError(
            "fft_conv with a `spectral_filter` (e.g. S4D's `sobolev_order`) "
            "needs a static sequence length under a JAX export; export with "
            "a fixed length, or from the TensorFlow backend."
        )
    out_dtype = inputs.dtype
    u = ops.cast(inputs, "float32")

    def delay(x):  # x[:, t] <- x[:, t - 1], zero at t = 0
        return ops.concatenate([ops.zeros_like(x[:, :1]), x[:, :-1]], 1)

    def advance(x):  # x[:, t] <- x[:, t + 1], zero at the end
        return ops.concatenate([x[:, 1:], ops.zeros_like(x[:, :1])], 1)

    def taps_sum(start, taps, shift):
        def body(carry, tap):
            total, shifted = carry
            return (total + shifted * tap, shift(shifted)), None

        (total, _), _ = ops.scan(
            body, (ops.zeros_like(u), start), ops.transpose(taps)
        )
        return total

    # Causal: y[t] = sum_l k[l] u[t - l].
    y = taps_sum(u, ops.cast(kernel, "float32"), delay)
    if kernel_backward is not None:
        # Anti-causal: y[t] += sum_j kb[j] u[t + 1 + j].
        kb = ops.cast(kernel_backward, "float32")
        y = y + taps_sum(advance(u), kb, advance)
    return ops.cast(y, out_dtype)
