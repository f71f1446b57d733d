"""Continuity tools ("Continuity Laws for Sequential Models", Yu et al.).

model_continuity: S4D converges under temporal refinement with relative
errors that do not depend on the input amplitude; the selective SSM's
errors grow with the amplitude. task_continuity: about 1 for smooth series,
about 0 for tokens. Temporal subsampling works when dt follows the step.
"""

import os

import keras
import numpy as np
import pytest

import keras_ssm
from keras_ssm.analysis import dt_scaled
from keras_ssm.analysis import model_continuity
from keras_ssm.analysis import scale_dt
from keras_ssm.analysis import task_continuity
from keras_ssm.analysis import temporal_subsample
from tests.conftest import shared_data_dir
from tests.helpers import to_numpy

AMPLITUDES = (0.1, 1.0, 10.0)


def smooth_signal(finest_length=256, steps_per_unit=8.0, channels=4):
    """Two sequences of smooth multi-tone signals, float32."""
    t = np.arange(finest_length) / steps_per_unit
    x = np.stack(
        [
            np.sin(0.3 * t + p) + 0.5 * np.cos(0.11 * (p + 1) * t)
            for p in range(channels)
        ],
        axis=-1,
    )[None]
    return np.concatenate([x, -x[:, ::-1]]).astype("float32")


def numpy_s4d(layer, x, dt_scale):
    """Float64 S4D (ZOH): causal convolution with K plus D x."""
    dt = np.exp(to_numpy(layer.log_dt))[:, None] * dt_scale
    A = -np.exp(to_numpy(layer.log_A_real)) + 1j * to_numpy(layer.A_imag)
    C = to_numpy(layer.C_real)[0] + 1j * to_numpy(layer.C_imag)[0]
    length = x.shape[1]
    powers = np.exp(dt[..., None] * A[..., None] * np.arange(length))
    kernel = 2 * np.einsum("hn,hnl->hl", C * (np.exp(dt * A) - 1) / A, powers)
    kernel = kernel.real
    y = np.zeros(x.shape)
    for h in range(x.shape[-1]):
        for b in range(x.shape[0]):
            y[b, :, h] = np.convolve(x[b, :, h], kernel[h])[:length]
    return y + x * to_numpy(layer.D)


def make_s4d():
    keras.utils.set_random_seed(0)
    return keras_ssm.layers.S4D(
        d_state=16, dt_min=0.05, dt_max=0.2, D_initializer="zeros"
    )


# -- model continuity ------------------------------------------------------


def test_model_continuity_matches_numpy_for_s4d():
    x = smooth_signal()
    layer = make_s4d()
    result = model_continuity(layer, x, refinements=(1, 2, 8))
    assert result["refinements"] == [1, 2, 8]
    assert result["rel_rmse"].shape == (1, 3)
    finest = numpy_s4d(layer, x, 1 / 8)[:, ::8]
    for j, r in enumerate((1, 2)):
        y = numpy_s4d(layer, x[:, :: 8 // r], 1 / r)[:, ::r]
        diff = y - finest
        rel_linf = np.abs(diff).max() / np.abs(finest).max()
        rel_rmse = np.sqrt(np.mean(diff**2) / np.mean(finest**2))
        np.testing.assert_allclose(result["rel_linf"][0, j], rel_linf, 1e-3)
        np.testing.assert_allclose(result["rel_rmse"][0, j], rel_rmse, 1e-3)
    np.testing.assert_array_equal(result["rel_rmse"][:, -1], 0.0)
    assert layer.dt_scale == 1.0  # restored after the analysis


def test_s4d_converges_and_ignores_amplitude():
    result = model_continuity(
        make_s4d(), smooth_signal(), amplitudes=AMPLITUDES
    )
    for errors in (result["rel_rmse"], result["rel_linf"]):
        # A linear layer: the same relative errors at every amplitude.
        np.testing.assert_allclose(errors, errors[[1, 1, 1]], rtol=1e-3)
        assert np.all(np.diff(errors[:, :-1], axis=1) < 0)
    # First order in the step: the error at tau / 4 is under a third of
    # the error at tau (measured against tau / 8).
    assert np.all(result["rel_rmse"][:, 2] < result["rel_rmse"][:, 0] / 3)


def test_selective_ssm_is_amplitude_sensitive():
    ssm_class = getattr(keras_ssm.layers, "SelectiveSSM", None)
    if ssm_class is None:
        pytest.skip("keras_ssm.layers.SelectiveSSM (issue 4) is not there.")
    keras.utils.set_random_seed(0)
    s6 = ssm_class(d_state=16)
    result = model_continuity(s6, smooth_signal(), amplitudes=AMPLITUDES)
    coarse = result["rel_rmse"][:, 0]
    # Input-dependent dt: relative errors grow with the amplitude, by far
    # more than S4D's (which do not move at all).
    assert np.all(np.diff(coarse) > 0)
    assert coarse[-1] > 100 * coarse[0]
    s4d = model_continuity(make_s4d(), smooth_signal(), amplitudes=AMPLITUDES)
    s4d_coarse = s4d["rel_rmse"][:, 0]
    assert coarse[-1] / coarse[0] > 50 * s4d_coarse.max() / s4d_coarse.min()


def test_model_continuity_scales_nested_layers():
    model = keras.Sequential(
        [keras.Input((None, 4)), keras.layers.Dense(4), make_s4d()]
    )
    result = model_continuity(model, smooth_signal(), refinements=(2, 4, 8))
    assert np.all(np.diff(result["rel_rmse"][0]) < 0)
    assert model.layers[-1].dt_scale == 1.0


def test_model_continuity_bad_arguments():
    x = smooth_signal()
    with pytest.raises(ValueError, match="refinements"):
        model_continuity(make_s4d(), x, refinements=(2, 3))
    with pytest.raises(ValueError, match="refinements"):
        model_continuity(make_s4d(), x, refinements=())
    with pytest.raises(ValueError, match="multiple of max"):
        model_continuity(make_s4d(), x[:, :250])
    with pytest.raises(ValueError, match="amplitudes"):
        model_continuity(make_s4d(), x, amplitudes=(0.0,))
    with pytest.raises(ValueError, match="dt_scale"):
        model_continuity(keras.layers.Dense(4), x)


# -- temporal subsampling --------------------------------------------------


def test_temporal_subsample_is_window_mean():
    x = np.random.normal(size=(2, 10, 3)).astype("float32")
    expected = x[:, :9].reshape(2, 3, 3, 3).mean(axis=2)
    out = temporal_subsample(x, 3)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    tensor_out = temporal_subsample(keras.ops.convert_to_tensor(x), 3)
    np.testing.assert_allclose(to_numpy(tensor_out), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="factor"):
        temporal_subsample(x, 0)
    with pytest.raises(ValueError, match="factor"):
        temporal_subsample(x, 11)
    with pytest.raises(ValueError, match="factor"):
        temporal_subsample(x, 2.0)
    with pytest.raises(ValueError, match="batch, length, channels"):
        temporal_subsample(x[0], 2)


@pytest.mark.parametrize("factor", [2, 4])
def test_subsampled_input_with_scaled_dt_tracks_fine_output(factor):
    x = smooth_signal(finest_length=128, steps_per_unit=4.0)
    keras.utils.set_random_seed(0)
    fine_layer = keras_ssm.layers.S4D(
        d_state=16, dt_min=0.01, dt_max=0.05, D_initializer="zeros"
    )
    fine = to_numpy(fine_layer(x))[:, factor - 1 :: factor]  # window ends
    coarse_x = temporal_subsample(x, factor)

    def error(y):
        return np.sqrt(np.mean((y - fine) ** 2) / np.mean(fine**2))

    unscaled = error(to_numpy(fine_layer(coarse_x)))
    model = keras.Sequential([keras.Input((None, 4)), fine_layer])
    assert scale_dt(model, factor) == [fine_layer]
    assert fine_layer.dt_scale == factor
    scaled = error(to_numpy(model(coarse_x)))
    assert scaled < 0.05 and unscaled > 0.5
    with dt_scaled(model, 1 / factor):
        assert fine_layer.dt_scale == 1.0
    assert fine_layer.dt_scale == factor
    with pytest.raises(ValueError, match="factor"):
        scale_dt(model, -1.0)


# -- task continuity -------------------------------------------------------


def test_task_continuity_of_a_sinusoid_is_cos_omega():
    omega = 2 * np.pi / 50
    x = np.sin(omega * np.arange(50 * 20 + 1))[None]
    np.testing.assert_allclose(task_continuity(x), np.cos(omega), atol=2e-3)


def test_task_continuity_matches_numpy_and_is_affine_invariant():
    rng = np.random.default_rng(0)
    sequences = [
        np.cumsum(rng.normal(size=(n, 2)), axis=0) for n in (30, 45, 12)
    ]
    stacked = np.concatenate(sequences)
    z = [(s - stacked.mean(0)) / stacked.std(0) for s in sequences]
    diffs = np.concatenate([np.diff(s, axis=0) for s in z])
    expected = 1 - 0.5 * np.mean(diffs**2)
    np.testing.assert_allclose(task_continuity(sequences), expected)
    moved = [s * np.array([-3.0, 0.5]) + 7.0 for s in sequences]
    np.testing.assert_allclose(task_continuity(moved), expected)


def test_task_continuity_separates_smooth_from_tokens():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 1000, size=(8, 500))
    assert abs(task_continuity(tokens)) < 0.05
    alternating = np.tile([1.0, -1.0], (3, 50))
    np.testing.assert_allclose(task_continuity(alternating), -1.0)
    t = np.linspace(0, 1, 500)
    assert task_continuity(np.sin(2 * np.pi * 3 * t)[None]) > 0.99


def test_task_continuity_of_ett_is_high():
    path = os.path.join(shared_data_dir(), "ETT-small", "ETTh1.csv")
    if not os.path.exists(path):
        pytest.skip(f"{path} is not available.")
    data = np.genfromtxt(path, delimiter=",", skip_header=1)[:, 1:]
    value = task_continuity(data[None])
    assert 0.8 < value < 1.0


def test_task_continuity_bad_arguments():
    with pytest.raises(ValueError, match="constant"):
        task_continuity(np.ones((2, 10)))
    with pytest.raises(ValueError, match="at least 2 steps"):
        task_continuity([np.arange(5.0), np.arange(1.0)])
    with pytest.raises(ValueError, match="shape"):
        task_continuity(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        task_continuity(np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="channels"):
        task_continuity([np.zeros((5, 2)), np.zeros((5, 3))])
