"""Frequency bias of S4D: freq_scale, the Sobolev filter, transfer_function.

"Tuning Frequency Bias of State Space Models" (Yu et al.): scaling the
imaginary parts of A moves the kernel's energy to higher frequencies, and
the Sobolev filter (1 + j / J)^beta on the kernel's frequency response
boosts (beta > 0) or damps (beta < 0) high frequencies.
"""

import keras
import numpy as np
import pytest

import keras_ssm
from keras_ssm.analysis import spectral_centroid
from keras_ssm.analysis import transfer_function
from keras_ssm.layers.s4d import diagonal_init
from keras_ssm.layers.s4d import sobolev_filter
from keras_ssm.ops.fft_conv import next_fast_length
from keras_ssm.optimizers import ssm_adamw
from tests.helpers import to_numpy


def numpy_s4d_kernel(layer, length):
    """K[d, h, l] = 2 Re sum_n C_n dB_n dA_n^l (ZOH), float64."""
    dt = np.exp(to_numpy(layer.log_dt))[:, None]
    A = -np.exp(to_numpy(layer.log_A_real)) + 1j * to_numpy(layer.A_imag)
    C = to_numpy(layer.C_real) + 1j * to_numpy(layer.C_imag)
    dB = (np.exp(dt * A) - 1) / A
    powers = np.exp(dt[..., None] * A[..., None] * np.arange(length))
    return 2 * np.einsum("dhn,hnl->dhl", C * dB, powers).real


def numpy_filter(beta, num_bins):
    j = np.arange(num_bins)
    return (1 + j / num_bins) ** np.reshape(beta, (-1, 1))


def numpy_response(layer, num_points, beta=0.0):
    """rfft of the (two-sided) kernel on 2L points, times the filter."""
    length = num_points - 1
    kernel = numpy_s4d_kernel(layer, length)
    circle = np.zeros(kernel.shape[1:-1] + (2 * length,))
    circle[..., :length] = kernel[0]
    if kernel.shape[0] == 2:  # backward tap j sits at lag -(j + 1)
        circle[..., length:] += kernel[1][..., ::-1]
    return np.fft.rfft(circle, axis=-1) * numpy_filter(beta, num_points)


def build_s4d(channels=4, **kwargs):
    keras.utils.set_random_seed(0)
    layer = keras_ssm.layers.S4D(d_state=16, **kwargs)
    layer.build((None, None, channels))
    return layer


# -- the Sobolev filter ----------------------------------------------------


def test_sobolev_filter_formula():
    np.testing.assert_allclose(
        to_numpy(sobolev_filter(1.5)(33)), numpy_filter(1.5, 33), rtol=1e-6
    )
    betas = np.array([-2.0, 0.0, 0.5], "float32")
    np.testing.assert_allclose(
        to_numpy(sobolev_filter(betas)(17)), numpy_filter(betas, 17), rtol=1e-6
    )


@pytest.mark.parametrize("bidirectional", [False, True])
def test_transfer_function_matches_numpy(bidirectional):
    layer = build_s4d(bidirectional=bidirectional, sobolev_order=0.7)
    freqs, response = transfer_function(layer, 65)
    expected = numpy_response(layer, 65, beta=0.7)
    assert response.shape == (4, 65)
    np.testing.assert_allclose(freqs, np.arange(65) / 128)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(response, expected, atol=2e-5 * scale)
    _, with_skip = transfer_function(layer, 65, include_skip=True)
    np.testing.assert_allclose(
        with_skip - response,
        np.broadcast_to(to_numpy(layer.D)[:, None], (4, 65)),
        atol=1e-6,
    )


@pytest.mark.parametrize("beta", [-1.0, 1.0])
def test_sobolev_call_matches_numpy(beta):
    layer = build_s4d(sobolev_order=beta)
    u = np.random.normal(size=(2, 64, 4)).astype("float32")
    y = to_numpy(layer(u))
    n = next_fast_length(128)
    kernel = numpy_s4d_kernel(layer, 64)[0]
    spectrum = np.fft.rfft(np.moveaxis(u, 1, -1), n) * np.fft.rfft(kernel, n)
    spectrum *= numpy_filter(beta, n // 2 + 1)
    conv = np.moveaxis(np.fft.irfft(spectrum, n)[..., :64], -1, 1)
    expected = conv + u * to_numpy(layer.D)
    np.testing.assert_allclose(y, expected, atol=1e-4)


@pytest.mark.parametrize("beta", [-1.0, 1.0])
def test_sobolev_order_moves_spectrum(beta):
    _, plain = transfer_function(build_s4d(), 65)
    _, filtered = transfer_function(build_s4d(sobolev_order=beta), 65)
    gain = np.abs(filtered) / np.abs(plain)
    np.testing.assert_allclose(
        gain, np.broadcast_to(numpy_filter(beta, 65), gain.shape), rtol=1e-4
    )
    steps = np.diff(gain, axis=-1)
    if beta > 0:  # boosts high frequencies
        assert np.all(steps > 0) and np.all(gain[:, -1] > 1.9)
    else:  # damps them
        assert np.all(steps < 0) and np.all(gain[:, -1] < 0.51)
    freqs = np.arange(65) / 128
    shift = spectral_centroid(filtered, freqs) - spectral_centroid(plain, freqs)
    assert np.all(np.sign(shift) == np.sign(beta))


def test_trainable_sobolev_is_per_channel_and_learns():
    layer = build_s4d(trainable_sobolev=True)
    beta = layer.sobolev_beta
    assert tuple(beta.shape) == (4,) and beta.dtype == "float32"
    assert beta.trainable
    np.testing.assert_array_equal(to_numpy(beta), np.zeros(4))
    optimizer = ssm_adamw(1e-3, weight_decay=0.1)
    assert not optimizer._use_weight_decay(beta)  # an SSM parameter
    assert optimizer._use_weight_decay(layer.C_real)
    _, plain = transfer_function(layer, 65)
    betas = np.array([1.0, -1.0, 0.0, 2.0], "float32")
    beta.assign(betas)
    _, filtered = transfer_function(layer, 65)
    np.testing.assert_allclose(
        np.abs(filtered) / np.abs(plain), numpy_filter(betas, 65), rtol=1e-4
    )
    model = keras.Sequential([keras.Input((64, 4)), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = np.random.normal(size=(2, 64, 4)).astype("float32")
    y = np.random.normal(size=(2, 64, 4)).astype("float32")
    model.train_on_batch(x, y)
    learned = to_numpy(layer.sobolev_beta)
    assert np.all(np.isfinite(learned)) and np.all(learned != betas)


# -- initialisation scaling ------------------------------------------------


def test_freq_scale_multiplies_imaginary_parts():
    base = build_s4d(init="lin")
    scaled = build_s4d(init="lin", freq_scale=3.0)
    np.testing.assert_allclose(
        to_numpy(scaled.A_imag), 3.0 * to_numpy(base.A_imag), rtol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(scaled.A_imag)[0], 3.0 * diagonal_init("lin", 16)[1]
    )


@pytest.mark.parametrize("init, dt_max", [("lin", 0.02), ("legs", 0.004)])
def test_larger_freq_scale_moves_energy_to_higher_frequencies(init, dt_max):
    # dt small enough that 4 dt max|Im A| stays below pi (no aliasing), and a
    # kernel long enough (256 taps) to resolve the slowest mode.
    centroids = []
    for scale in (0.5, 1.0, 2.0, 4.0):
        layer = build_s4d(
            channels=8,
            init=init,
            freq_scale=scale,
            dt_min=dt_max / 2,
            dt_max=dt_max,
        )
        freqs, response = transfer_function(layer, 257)
        centroids.append(spectral_centroid(response, freqs))
    centroids = np.stack(centroids)  # (scales, channels)
    # Random C and dt make single channels noisy: test the channel mean.
    mean = centroids.mean(axis=1)
    assert np.all(np.diff(mean) > 0)
    assert mean[-1] > 2 * mean[0]


# -- bad arguments ---------------------------------------------------------


def test_transfer_function_bad_arguments():
    layer = build_s4d()
    with pytest.raises(ValueError, match="num_points"):
        transfer_function(layer, 1)
    with pytest.raises(ValueError, match="num_points"):
        transfer_function(layer, 16.5)
    with pytest.raises(ValueError, match="built"):
        transfer_function(keras_ssm.layers.S4D(d_state=4), 16)
    dense = keras.layers.Dense(3)
    dense.build((None, 3))
    with pytest.raises(ValueError, match="kernel\\(length\\)"):
        transfer_function(dense, 16)


def test_transfer_function_of_ces():
    ces_class = getattr(keras_ssm.layers, "CES", None)
    if ces_class is None:
        pytest.skip("keras_ssm.layers.CES (issue 3) is not in the tree yet.")
    layer = ces_class()
    layer.build((None, None, 4))
    freqs, response = transfer_function(layer, 65)
    kernel = to_numpy(layer.kernel(64))
    circle = np.zeros((4, 128))
    circle[:, :64] = kernel[0]
    if kernel.shape[0] == 2:
        circle[:, 64:] += kernel[1][:, ::-1]
    expected = np.fft.rfft(circle, axis=-1)
    make_filter = getattr(layer, "spectral_filter", None)
    if callable(make_filter) and make_filter() is not None:
        expected = expected * to_numpy(make_filter()(65))
    assert response.shape == (4, 65)
    np.testing.assert_allclose(
        response, expected, atol=1e-5 * np.abs(expected).max()
    )
