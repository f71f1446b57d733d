"""`log_linear_recurrence` (decay given by its log) against float64 NumPy."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_ssm.ops.scan import LOG_METHODS
from keras_ssm.ops.scan import log_linear_recurrence
from tests.helpers import to_numpy
from tests.test_scan import assert_compiles_to
from tests.test_scan import gradients
from tests.test_scan import reference

PATHS = ("logspace", "sequential", "chunked")


def random_problem(length, rng, shape=(2, 3), strongest=-2.0):
    log_a = rng.uniform(strongest, 0.0, (shape[0], length, shape[1]))
    b = rng.normal(size=(shape[0], length, shape[1]))
    return log_a.astype("float32"), b.astype("float32")


# 70 and 600 steps take the log-space scan through two and three levels of
# chunks of 8; 13 leaves a partial last chunk.
@pytest.mark.parametrize("method", PATHS)
@pytest.mark.parametrize("length", [1, 13, 70, 600])
def test_matches_float64_reference(method, length):
    rng = np.random.default_rng(length)
    log_a, b = random_problem(length, rng)
    h0 = rng.normal(size=(2, 3)).astype("float32")
    a = np.exp(log_a.astype("float64"))
    for state, reverse in ((None, False), (h0, False), (h0, True)):
        expected = reference(a, b.astype("float64"), state, reverse)
        h = log_linear_recurrence(
            log_a, b, state, reverse=reverse, method=method, chunk_size=4
        )
        np.testing.assert_allclose(to_numpy(h), expected, rtol=1e-5, atol=1e-5)


def test_logspace_strong_decays_stay_finite_and_exact():
    """log a down to -80 (beyond float32's exp range over a chunk)."""
    rng = np.random.default_rng(7)
    log_a, b = random_problem(200, rng, strongest=-80.0)
    log_a[:, ::5] = 0.0  # and some steps that keep everything
    b = b * 1e4
    h = to_numpy(log_linear_recurrence(log_a, b, method="logspace"))
    expected = reference(np.exp(log_a.astype("float64")), b * 1.0)
    assert np.all(np.isfinite(h))
    np.testing.assert_allclose(h, expected, rtol=1e-5, atol=1e-5 * 1e4)


@pytest.mark.parametrize("method", ("logspace", "sequential"))
def test_gradients_match_adjoint_recurrence(method):
    """dL/db_t = g_t = w_t + a_{t+1} g_{t+1}; dL/dlog a_t = g_t a_t h_{t-1}."""
    rng = np.random.default_rng(4)
    log_a, b = random_problem(70, rng)
    w = rng.normal(size=b.shape).astype("float32")

    def loss(log_a, b):
        h = log_linear_recurrence(log_a, b, method=method)
        return ops.sum(h * ops.convert_to_tensor(w))

    grad_log_a, grad_b = (to_numpy(g) for g in gradients(loss, log_a, b))
    a = np.exp(log_a.astype("float64"))
    h = reference(a, b * 1.0)
    g = reference(
        np.concatenate([a[:, 1:], np.ones_like(a[:, :1])], axis=1),
        w * 1.0,
        reverse=True,
    )
    h_prev = np.concatenate([np.zeros_like(h[:, :1]), h[:, :-1]], axis=1)
    assert np.all(np.isfinite(grad_log_a)) and np.all(np.isfinite(grad_b))
    np.testing.assert_allclose(grad_b, g, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grad_log_a, g * a * h_prev, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_inputs_scan_in_float32(dtype):
    rng = np.random.default_rng(5)
    log_a, b = random_problem(13, rng)
    log_a, b = ops.cast(log_a, dtype), ops.cast(b, dtype)
    h = log_linear_recurrence(log_a, b, method="logspace")
    assert keras.backend.standardize_dtype(h.dtype) == "float32"
    expected = reference(np.exp(to_numpy(log_a) * 1.0), to_numpy(b) * 1.0)
    np.testing.assert_allclose(to_numpy(h), expected, rtol=1e-5, atol=1e-5)


def test_compiles_with_static_and_unknown_length():
    """logspace compiles: jax.jit, tf.function + XLA, unknown length."""
    rng = np.random.default_rng(6)
    log_a, b = random_problem(70, rng)

    def fn(log_a, b):
        return log_linear_recurrence(log_a, b, method="logspace")

    expected = reference(np.exp(log_a * 1.0), b * 1.0)
    assert_compiles_to(fn, log_a, b, expected)


def test_bad_arguments_raise():
    x = np.zeros((1, 4, 2), "float32")
    with pytest.raises(ValueError, match="`method` must be one of"):
        log_linear_recurrence(x, x, method="parallel")
    with pytest.raises(ValueError, match=r"\(batch, length, \.\.\.\)"):
        log_linear_recurrence(x[0, 0], x[0, 0], method="logspace")
    assert "logspace" in LOG_METHODS


def test_auto_is_linear_in_length_on_every_backend(backend):
    """auto: sequential on CPU JAX/PyTorch, logspace on TF (its sequential
    scan grows quadratically) and on accelerators."""
    from keras_ssm.ops.scan import default_log_method
    from keras_ssm.ops.scan import on_accelerator

    expected = (
        "logspace"
        if backend == "tensorflow" or on_accelerator()
        else "sequential"
    )
    assert default_log_method() == expected
