"""Frequency responses of the convolutional SSM layers (S4D, CES)."""

import numpy as np
from keras import ops

from keras_ssm.ops.fft_conv import two_sided_kernel


def transfer_function(layer, num_points, include_skip=False):
    """The frequency response of a built S4D or CES layer, per channel.

    It is the response that the layer's FFT convolution applies to an input
    of length L = `num_points - 1` padded to 2L samples: the rfft of the
    layer's kernel (both directions laid out on the circle when the layer
    is bidirectional), times the layer's spectral filter (the Sobolev filter
    (1 + j / J)^beta of S4D, J = `num_points`), plus the skip D when
    `include_skip`. Bin j sits at the frequency j / (2L) cycles per sample,
    from 0 to the Nyquist frequency 1/2.

    The filter follows the formula of the frequency-bias paper (Yu et al.),
    J the number of rfft bins, so j / J runs from 0 to about 1. The paper's
    LRA code (FreqBiasSSM, `FFTConv`) divides by the FFT length 2L instead,
    (1 + j / (2L))^s with j / (2L) from 0 to 1/2: the same beta tilts the
    spectrum less there.

    Args:
        layer: a built layer with `kernel(length)` returning
            `(directions, channels, length)` (S4D, CES), and optionally
            `spectral_filter()` and a skip weight `D` of shape (channels,).
        num_points: number of frequencies (>= 2).
        include_skip: add the skip term D (a flat response) when the layer
            has one.

    Returns:
        `(frequencies, response)`: float64 array of shape (num_points,) in
        cycles per sample, and complex128 array of shape
        (channels, num_points).

    Example:

    >>> layer = keras_ssm.layers.S4D(d_state=16)
    >>> layer.build((None, None, 4))
    >>> freqs, response = transfer_function(layer, 129)
    >>> response.shape
    (4, 129)
    """
    if isinstance(num_points, bool) or not isinstance(
        num_points, (int, np.integer)
    ):
        raise ValueError(
            f"`num_points` must be an integer, got {num_points!r}."
        )
    if num_points < 2:
        raise ValueError(f"`num_points` must be >= 2, got {num_points}.")
    if not hasattr(layer, "kernel") or not callable(layer.kernel):
        raise ValueError(
            "`layer` must have a `kernel(length)` method returning "
            "(directions, channels, length), like S4D or CES; got "
            f"{type(layer).__name__}."
        )
    if not layer.built:
        raise ValueError(
            f"`layer` ({layer.name}) must be built first: call it on an "
            "input or use `layer.build((batch, length, channels))`."
        )
    length = int(num_points) - 1
    fft_length = 2 * length
    kernel = ops.cast(layer.kernel(length), "float32")
    if kernel.shape[0] == 2:
        kernel = two_sided_kernel(kernel[0], kernel[1], fft_length)
    else:
        kernel = kernel[0]
    k_re, k_im = ops.rfft(kernel, fft_length=fft_length)
    response = ops.convert_to_numpy(k_re).astype(np.float64) + 1j * (
        ops.convert_to_numpy(k_im).astype(np.float64)
    )
    make_filter = getattr(layer, "spectral_filter", None)
    spectral_filter = make_filter() if callable(make_filter) else None
    if spectral_filter is not None:
        gain = ops.convert_to_numpy(spectral_filter(num_points))
        response = response * gain.astype(np.float64)
    if include_skip and getattr(layer, "D", None) is not None:
        skip = ops.convert_to_numpy(layer.D).astype(np.float64)
        response = response + skip.reshape(-1, 1)
    frequencies = np.arange(num_points, dtype=np.float64) / fft_length
    return frequencies, response


def spectral_centroid(response, frequencies):
    """Energy-weighted mean frequency, sum f |H(f)|^2 / sum |H(f)|^2.

    Args:
        response: complex or real array (..., num_points).
        frequencies: array (num_points,).

    Returns:
        Array of shape `response.shape[:-1]`.
    """
    energy = np.abs(np.asarray(response)) ** 2
    total = np.maximum(energy.sum(-1), np.finfo(np.float64).tiny)
    return (energy * np.asarray(frequencies)).sum(-1) / total
