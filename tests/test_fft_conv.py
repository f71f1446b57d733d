"""`fft_conv`: the complex fast path against the portable path and NumPy."""

import importlib

import keras
import numpy as np
import pytest

from keras_ssm.layers import S4D
from keras_ssm.ops.fft_conv import fft_conv
from keras_ssm.ops.fft_conv import native_fft_product
from keras_ssm.ops.fft_conv import next_fast_length
from tests.helpers import layer_gradients
from tests.helpers import to_numpy

# The module (keras_ssm.ops exports the function under the same name).
fft_conv_module = importlib.import_module("keras_ssm.ops.fft_conv")


def _numpy_conv(u, k, kb=None, gain=None):
    """The convolution in float64 NumPy.

    Without a filter, directly: y[t] = sum_l k[l] u[t - l] (+ sum_j kb[j]
    u[t + 1 + j]). A spectral filter is defined on the padded spectrum, so
    with one the reference is the product of float64 spectra.
    """
    batch, length, channels = u.shape
    if gain is not None:
        n = next_fast_length(2 * length)
        spectrum = np.fft.rfft(u.transpose(0, 2, 1), n) * np.fft.rfft(k, n)
        y = np.fft.irfft(spectrum * gain, n)[..., :length]
        return y.transpose(0, 2, 1)
    y = np.zeros((batch, length, channels))
    for t in range(length):
        for lag in range(t + 1):
            y[:, t] += k[:, lag] * u[:, t - lag]
        if kb is not None:
            for j in range(length - 1 - t):
                y[:, t] += kb[:, j] * u[:, t + 1 + j]
    return y


def _none(*args, **kwargs):
    """Stands in for `native_fft_product`: the portable path runs."""
    return None


def test_fast_path_exists_where_the_backend_has_complex_tensors():
    u = keras.ops.ones((1, 2, 8))
    k = keras.ops.ones((2, 8))
    product = native_fft_product(u, k, 16)
    if keras.backend.backend() == "tensorflow":
        assert product is None
    else:
        assert tuple(product.shape) == (1, 2, 16)
    assert native_fft_product(u, k, None) is None


@pytest.mark.parametrize(
    "bidirectional, filtered", [(False, False), (True, False), (False, True)]
)
def test_both_paths_match_the_numpy_convolution(
    monkeypatch, bidirectional, filtered
):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(2, 12, 3)).astype("float32")
    k = rng.normal(size=(3, 12)).astype("float32")
    kb = rng.normal(size=(3, 12)).astype("float32") if bidirectional else None
    bins = next_fast_length(24) // 2 + 1
    gain = (1.0 + np.arange(bins) / bins) ** -1.0 if filtered else None

    def spectral_filter(num_bins):
        assert num_bins == bins
        return keras.ops.convert_to_tensor(gain[None].astype("float32"))

    expected = _numpy_conv(u, k, kb, None if gain is None else gain[None])
    outputs = []
    for path in ("fast", "portable"):
        if path == "portable":
            monkeypatch.setattr(fft_conv_module, "native_fft_product", _none)
        y = fft_conv(u, k, kb, spectral_filter if filtered else None)
        outputs.append(to_numpy(y))
        np.testing.assert_allclose(outputs[-1], expected, atol=1e-4)
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_s4d_gradients_are_the_same_on_both_paths(monkeypatch, bidirectional):
    inputs = np.random.default_rng(1).normal(size=(2, 32, 4)).astype("float32")
    layer = S4D(d_state=8, bidirectional=bidirectional)
    layer(inputs)
    fast = layer_gradients(layer, inputs)
    outputs = to_numpy(layer(inputs))
    monkeypatch.setattr(fft_conv_module, "native_fft_product", _none)
    portable = layer_gradients(layer, inputs)
    np.testing.assert_allclose(to_numpy(layer(inputs)), outputs, atol=1e-5)
    assert len(fast) == len(portable) > 0
    for a, b in zip(fast, portable):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
