"""The portable ops shared by every layer: FFT convolution, complex pairs."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_ssm.ops import complex as cplx
from keras_ssm.ops.fft_conv import fft_conv
from keras_ssm.ops.fft_conv import next_fast_length
from keras_ssm.ops.vandermonde import vandermonde_real
from tests.helpers import to_numpy


def direct_conv(u, k, k_backward=None):
    """float64 reference: y[t] = sum_l k[l] u[t-l] + sum_j kb[j] u[t+1+j]."""
    batch, length, channels = u.shape
    y = np.zeros((batch, length, channels))
    for t in range(length):
        for lag in range(t + 1):
            y[:, t] += k[:, lag] * u[:, t - lag]
        if k_backward is not None:
            for j in range(length - t - 1):
                y[:, t] += k_backward[:, j] * u[:, t + 1 + j]
    return y


@pytest.mark.parametrize("length", [1, 7, 33])
def test_fft_conv_causal_matches_direct_convolution(length):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(2, length, 3))
    k = rng.normal(size=(3, length))
    y = fft_conv(u.astype("float32"), k.astype("float32"))
    np.testing.assert_allclose(to_numpy(y), direct_conv(u, k), atol=1e-4)


@pytest.mark.parametrize("length", [2, 16, 31])
def test_fft_conv_bidirectional_matches_two_sided_reference(length):
    rng = np.random.default_rng(1)
    u = rng.normal(size=(2, length, 3))
    k = rng.normal(size=(3, length))
    kb = rng.normal(size=(3, length))
    y = fft_conv(*(x.astype("float32") for x in (u, k, kb)))
    np.testing.assert_allclose(to_numpy(y), direct_conv(u, k, kb), atol=1e-4)


def test_fft_conv_is_causal():
    rng = np.random.default_rng(2)
    u = rng.normal(size=(1, 20, 2)).astype("float32")
    k = rng.normal(size=(2, 20)).astype("float32")
    changed = u.copy()
    changed[:, 12:] += 5.0
    y1, y2 = to_numpy(fft_conv(u, k)), to_numpy(fft_conv(changed, k))
    np.testing.assert_allclose(y1[:, :12], y2[:, :12], atol=1e-5)
    assert np.abs(y1[:, 12:] - y2[:, 12:]).max() > 1e-2


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_fft_conv_keeps_input_dtype_and_computes_in_float32(dtype):
    rng = np.random.default_rng(3)
    u = rng.normal(size=(2, 64, 4))
    k = rng.normal(size=(4, 64)) / 8
    y = fft_conv(ops.cast(u, dtype), ops.cast(k, dtype))
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    # float16 FFTs would lose far more than the rounding of in/outputs.
    np.testing.assert_allclose(to_numpy(y), direct_conv(u, k), atol=0.1)


def test_fft_conv_spectral_filter_scales_frequency_response():
    rng = np.random.default_rng(4)
    u = rng.normal(size=(1, 16, 2)).astype("float32")
    k = rng.normal(size=(2, 16)).astype("float32")
    doubled = fft_conv(
        u, k, spectral_filter=lambda bins: ops.full((1, bins), 2.0)
    )
    np.testing.assert_allclose(
        to_numpy(doubled), 2 * to_numpy(fft_conv(u, k)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1000, 2049, 4096, 8191])
def test_next_fast_length_is_smallest_5_smooth_at_least_n(n):
    def smooth(m):
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    found = next_fast_length(n)
    assert found >= n and smooth(found)
    assert not any(smooth(m) for m in range(n, found))


def test_complex_helpers_match_numpy():
    rng = np.random.default_rng(5)
    a = rng.normal(size=4) + 1j * rng.normal(size=4)
    b = rng.normal(size=4) + 1j * rng.normal(size=4)
    pa = (a.real.astype("float32"), a.imag.astype("float32"))
    pb = (b.real.astype("float32"), b.imag.astype("float32"))

    def check(pair, expected):
        got = to_numpy(pair[0]) + 1j * to_numpy(pair[1])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

    check(cplx.cmul(pa, pb), a * b)
    check(cplx.cdiv(pa, pb), a / b)
    check(cplx.cadd(pa, pb), a + b)
    check(cplx.csub(pa, pb), a - b)
    check(cplx.cexp(pa), np.exp(a))
    check(cplx.clog(pa), np.log(a))
    check(cplx.cpow_real(pa, 2.5), a**2.5)
    np.testing.assert_allclose(
        to_numpy(cplx.cabs2(pa)), np.abs(a) ** 2, rtol=1e-5
    )


@pytest.mark.parametrize("length", [5, 16, 100, 257])
def test_vandermonde_matches_numpy(length):
    rng = np.random.default_rng(6)
    coeffs = rng.normal(size=(2, 3, 4)) + 1j * rng.normal(size=(2, 3, 4))
    log_z = -np.abs(rng.normal(size=(3, 4))) * 0.05 + 1j * rng.normal(
        size=(3, 4)
    )
    expected = np.real(
        np.einsum(
            "dhm,hml->dhl", coeffs, np.exp(log_z[..., None] * np.arange(length))
        )
    )

    def pair(z):
        return z.real.astype("float32"), z.imag.astype("float32")

    got = to_numpy(vandermonde_real(pair(coeffs), pair(log_z), length))
    assert got.shape == (2, 3, length)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
