"""SelectiveSSM (Mamba's S6) against a float64 NumPy recurrence."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_ssm.layers import SelectiveSSM
from keras_ssm.layers import selective_ssm as selective_ssm_module
from keras_ssm.layers.base import is_ssm_parameter
from keras_ssm.layers.selective_ssm import fused_scan_available
from tests.helpers import assert_refuses_bad_shapes
from tests.helpers import assert_save_load_roundtrip
from tests.helpers import run_steps
from tests.helpers import to_numpy
from tests.test_selective_scan import reference as scan_reference

PATHS = ("sequential", "associative", "chunked", "logspace", "streaming")


def softplus(x):
    return np.logaddexp(0.0, x)


def rms_normalize(v, epsilon):
    return v / np.sqrt(np.mean(v**2, axis=-1, keepdims=True) + epsilon)


def reference_selective_ssm(layer, x, dt_scale=None, mask=None):
    """y_t = C_t h_t + D x_t, h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t."""
    x = np.asarray(x, np.float64)
    if mask is not None:
        x = x * mask[..., None]
    rank, n = layer.resolved_dt_rank, layer.d_state
    proj = x @ to_numpy(layer.x_proj)
    dt_low, B, C = (
        proj[..., :rank],
        proj[..., rank : rank + n],
        proj[..., rank + n :],
    )
    if layer.selection_norm_epsilon is not None:  # Falcon-Mamba
        eps = layer.selection_norm_epsilon
        dt_low, B, C = (rms_normalize(v, eps) for v in (dt_low, B, C))
    dt = softplus(dt_low @ to_numpy(layer.dt_proj) + to_numpy(layer.dt_bias))
    dt = dt * (layer.dt_scale if dt_scale is None else dt_scale)
    if mask is not None:
        dt = dt * mask[..., None]
    A = -np.exp(to_numpy(layer.A_log))
    D = to_numpy(layer.D_skip)
    y = scan_reference(x, dt, A, B, C) + D * x
    return y if mask is None else y * mask[..., None]


def layer_gradients(layer, x, **call_kwargs):
    """Gradients of mean(layer(x)^2) w.r.t. the trainable weights."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        others = [v.value for v in layer.non_trainable_variables]

        def loss_fn(trainable):
            y, _ = layer.stateless_call(trainable, others, x, **call_kwargs)
            return ops.mean(ops.square(ops.cast(y, "float32")))

        return [to_numpy(g) for g in jax.jit(jax.grad(loss_fn))(trainable)]
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y = layer(x, **call_kwargs)
            loss = ops.mean(ops.square(ops.cast(y, "float32")))
        return [
            to_numpy(g) for g in tape.gradient(loss, layer.trainable_variables)
        ]
    for v in layer.trainable_variables:
        v.value.grad = None
    y = layer(x, **call_kwargs)
    ops.mean(ops.square(ops.cast(y, "float32"))).backward()
    return [to_numpy(v.value.grad) for v in layer.trainable_variables]


def make_layer(d_inner=6, length=9, batch=2, **kwargs):
    kwargs.setdefault("d_state", 4)
    layer = SelectiveSSM(**kwargs)
    layer.build((batch, length, d_inner))
    return layer


def random_inputs(batch=2, length=9, d_inner=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, d_inner)).astype("float32")


# "fused" falls back to the portable scan without CUDA and mamba_ssm.
@pytest.mark.parametrize("method", PATHS + ("auto", "fused"))
def test_matches_float64_reference(method):
    layer = make_layer(scan_method=method, chunk_size=4)
    x = random_inputs()
    np.testing.assert_allclose(
        to_numpy(layer(x)),
        reference_selective_ssm(layer, x),
        rtol=1e-4,
        atol=1e-5,
    )


def test_selection_norm_matches_float64_reference_and_steps():
    # Falcon-Mamba's weightless RMS norm of dt_low, B and C.
    layer = make_layer(selection_norm_epsilon=1e-3, dt_rank=3)
    x = random_inputs()
    y = to_numpy(layer(x))
    np.testing.assert_allclose(
        y, reference_selective_ssm(layer, x), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(run_steps(layer, x), y, rtol=1e-4, atol=1e-5)
    plain = make_layer(dt_rank=3)
    plain.set_weights(layer.get_weights())
    assert np.max(np.abs(to_numpy(plain(x)) - y)) > 1e-3  # the norm acts
    config = layer.get_config()
    assert config["selection_norm_epsilon"] == 1e-3
    assert SelectiveSSM.from_config(config).selection_norm_epsilon == 1e-3
    for bad in (0.0, -1.0, "1e-6", True):
        with pytest.raises(Exception, match="selection_norm_epsilon"):
            SelectiveSSM(selection_norm_epsilon=bad)


def test_default_initialisation_follows_mamba():
    layer = make_layer(d_inner=40, d_state=16, dt_min=0.01, dt_max=0.05)
    assert layer.resolved_dt_rank == math.ceil(40 / 16)
    assert tuple(layer.x_proj.shape) == (40, 3 + 2 * 16)
    np.testing.assert_allclose(
        to_numpy(layer.A_log),
        np.log(np.tile(np.arange(1, 17), (40, 1))),
        rtol=1e-6,
    )
    np.testing.assert_array_equal(to_numpy(layer.D_skip), np.ones(40))
    dt = softplus(to_numpy(layer.dt_bias))
    assert np.all(dt >= 0.01 * (1 - 1e-4)) and np.all(dt <= 0.05 * (1 + 1e-4))
    assert np.max(np.abs(to_numpy(layer.dt_proj))) <= 3**-0.5
    for name in ("A_log", "D_skip", "dt_bias"):
        assert is_ssm_parameter(getattr(layer, name))
        assert getattr(layer, name).dtype == "float32"
    assert not is_ssm_parameter(layer.x_proj)
    assert not is_ssm_parameter(layer.dt_proj)


def test_step_matches_call_and_is_causal():
    layer = make_layer(chunk_size=4)
    x = random_inputs()
    y = to_numpy(layer(x))
    np.testing.assert_allclose(run_steps(layer, x), y, rtol=1e-4, atol=1e-5)
    changed = x.copy()
    changed[:, 5:] += 1.0
    np.testing.assert_allclose(
        to_numpy(layer(changed))[:, :5], y[:, :5], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("method", PATHS)
def test_scan_hands_on_the_state_that_step_continues_from(method):
    # A prompt through the parallel form, then steps from its final state,
    # equals the whole sequence through `call`; padded steps (mask False)
    # leave the state as the last valid step left it.
    layer = make_layer(scan_method=method, chunk_size=4)
    x = random_inputs(length=9)
    mask = np.ones((2, 6), bool)
    mask[1, 4:] = False
    y, state = layer.scan(x[:, :6], mask=mask, return_final_state=True)
    whole = reference_selective_ssm(layer, x)
    np.testing.assert_allclose(
        to_numpy(y)[0], whole[0, :6], rtol=1e-4, atol=1e-5
    )
    assert np.all(to_numpy(y)[1, 4:] == 0)
    shorter = reference_selective_ssm(
        layer, np.concatenate([x[1:, :4], x[1:, 6:]], axis=1)
    )
    outputs = []
    for t in range(6, 9):
        y_t, state = layer.step(x[:, t], state)
        outputs.append(to_numpy(y_t))
    outputs = np.stack(outputs, axis=1)
    np.testing.assert_allclose(outputs[0], whole[0, 6:], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs[1], shorter[0, 4:], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        to_numpy(layer.scan(x, mask=None)), to_numpy(layer(x)), rtol=1e-6
    )


def test_dt_scale_multiplies_dt_at_call_and_construction():
    layer = make_layer()
    x = random_inputs()
    half = to_numpy(layer(x, dt_scale=0.5))
    np.testing.assert_allclose(
        half, reference_selective_ssm(layer, x, 0.5), rtol=1e-4, atol=1e-5
    )
    assert np.max(np.abs(half - to_numpy(layer(x)))) > 1e-3
    scaled = make_layer(dt_scale=0.5)
    scaled.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(scaled(x)), half, rtol=1e-5, atol=1e-6)
    state = layer.get_initial_state(2)
    y_t, _ = layer.step(x[:, 0], state, dt_scale=0.5)
    np.testing.assert_allclose(to_numpy(y_t), half[:, 0], rtol=1e-4, atol=1e-6)


def test_mask_skips_padded_steps():
    layer = make_layer()
    x = random_inputs()
    mask = np.ones((2, 9), bool)
    mask[0, 6:] = False
    y = to_numpy(layer(x, mask=mask))
    np.testing.assert_allclose(
        y,
        reference_selective_ssm(layer, x, mask=mask.astype("float64")),
        rtol=1e-4,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        y[:1, :6], to_numpy(layer(x[:1, :6])), rtol=1e-5, atol=1e-6
    )
    assert np.all(y[0, 6:] == 0)


def test_gradients_finite_and_equal_across_scan_paths():
    x = random_inputs(length=13)
    layer = make_layer(length=13, scan_method="sequential")
    expected = layer_gradients(layer, x)
    assert all(np.all(np.isfinite(g)) for g in expected)
    assert all(np.any(g != 0) for g in expected)
    for method in ("associative", "chunked", "logspace", "streaming"):
        other = make_layer(length=13, scan_method=method, chunk_size=4)
        other.set_weights(layer.get_weights())
        for g, e in zip(layer_gradients(other, x), expected):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_the_scan_in_float32(policy, monkeypatch):
    reference_layer = make_layer()
    keras.config.set_dtype_policy(policy)
    layer = make_layer()
    layer.set_weights(reference_layer.get_weights())
    seen = []
    original = selective_ssm_module.selective_scan

    def spy(*args, **kwargs):
        seen.append(tuple(x.dtype for x in args))
        return original(*args, **kwargs)

    monkeypatch.setattr(selective_ssm_module, "selective_scan", spy)
    x = random_inputs()
    y = layer(x)
    compute = policy.split("_")[1]
    assert keras.backend.standardize_dtype(y.dtype) == compute
    assert [tuple(map(keras.backend.standardize_dtype, s)) for s in seen] == [
        ("float32",) * 5  # u, dt, A, B, C
    ]
    for name in ("A_log", "D_skip", "dt_bias"):
        assert getattr(layer, name).dtype == "float32"
    np.testing.assert_allclose(
        to_numpy(y), to_numpy(reference_layer(x)), rtol=0.1, atol=0.1
    )
    y_t, state = layer.step(x[:, 0], layer.get_initial_state(2))
    assert keras.backend.standardize_dtype(state.dtype) == "float32"


def test_config_and_save_load_roundtrip(tmp_path):
    layer = SelectiveSSM(
        d_state=4, dt_rank=2, dt_scale=0.7, scan_method="chunked"
    )
    restored = SelectiveSSM.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    model = keras.Sequential([keras.Input((9, 6)), layer])
    assert_save_load_roundtrip(model, random_inputs(), tmp_path)


def test_bad_arguments_and_shapes_raise():
    with pytest.raises(ValueError, match="`d_state`"):
        SelectiveSSM(d_state=0)
    with pytest.raises(ValueError, match="`dt_rank`"):
        SelectiveSSM(dt_rank=0)
    with pytest.raises(ValueError, match="dt_min"):
        SelectiveSSM(dt_min=0.1, dt_max=0.01)
    with pytest.raises(ValueError, match="`dt_init_floor`"):
        SelectiveSSM(dt_init_floor=0.0)
    with pytest.raises(ValueError, match="`dt_scale`"):
        SelectiveSSM(dt_scale=-1.0)
    with pytest.raises(ValueError, match="`scan_method`"):
        SelectiveSSM(scan_method="parallel")
    with pytest.raises(ValueError, match="`chunk_size`"):
        SelectiveSSM(chunk_size=0)
    with pytest.raises(ValueError, match=r"\(batch, length, channels\)"):
        SelectiveSSM()(np.zeros((2, 6), "float32"))
    layer = make_layer()
    assert_refuses_bad_shapes(layer, 6, step_match=r"\(batch, 6\)")
    with pytest.raises(ValueError, match=r"\(batch, 6\)"):
        layer.step(np.zeros((2, 9, 6), "float32"), layer.get_initial_state(2))
    with pytest.raises(ValueError, match="`dt_scale`"):
        layer(random_inputs(), dt_scale=0.0)


@pytest.mark.skipif(
    not fused_scan_available(), reason="needs torch + CUDA + mamba_ssm"
)
def test_fused_cuda_kernel_matches_portable_scan():  # pragma: no cover
    import torch

    x = torch.tensor(random_inputs(), device="cuda")
    fused = make_layer(scan_method="fused")
    portable = make_layer(scan_method="chunked")
    portable.set_weights(fused.get_weights())
    np.testing.assert_allclose(
        to_numpy(fused(x)), to_numpy(portable(x)), rtol=1e-3, atol=1e-4
    )


@pytest.mark.parametrize("method", ["chunked", "logspace", "streaming"])
def test_long_input_runs_in_bounded_memory(method):
    """Length 8192 at small width: equals the reference, finite gradients."""
    x = random_inputs(batch=1, length=8192, d_inner=4, seed=1)
    layer = make_layer(
        d_inner=4, length=8192, batch=1, d_state=4, scan_method=method
    )
    y = to_numpy(layer(x))
    np.testing.assert_allclose(
        y, reference_selective_ssm(layer, x), rtol=1e-3, atol=1e-4
    )
    grads = layer_gradients(layer, x)
    assert all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize(
    "method", ["auto", "chunked", "associative", "logspace", "streaming"]
)
def test_fit_with_default_jit_compile(method):
    """model.fit with jit_compile="auto"; on TF also under XLA if it can."""
    model = keras.Sequential(
        [
            keras.Input((9, 6)),
            SelectiveSSM(d_state=4, scan_method=method),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse")
    x = random_inputs(batch=8)
    history = model.fit(x, x[..., :1], batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    if keras.backend.backend() != "tensorflow":
        return
    if method == "associative":  # not XLA-compilable: auto must avoid XLA
        assert not model.layers[0].supports_jit and not model.jit_compile
    else:  # auto picks XLA on TF with a GPU: the path must compile
        model.compile("adam", "mse", jit_compile=True)
        history = model.fit(x, x[..., :1], batch_size=4, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
