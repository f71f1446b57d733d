"""`linear_recurrence` / `complex_linear_recurrence` against float64 NumPy."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_ssm.ops.scan import METHODS
from keras_ssm.ops.scan import complex_linear_recurrence
from keras_ssm.ops.scan import default_chunk_size
from keras_ssm.ops.scan import linear_recurrence
from tests.helpers import to_numpy

PATHS = ("sequential", "associative", "chunked")


def reference(a, b, initial_state=None, reverse=False):
    """h_t = a_t h_{t-1} + b_t in float64 (complex allowed), step by step."""
    if reverse:
        return reference(a[:, ::-1], b[:, ::-1], initial_state)[:, ::-1]
    a = np.broadcast_to(a, b.shape)
    h = np.zeros_like(b[:, 0]) if initial_state is None else initial_state
    states = []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        states.append(h)
    return np.stack(states, axis=1)


def gradients(fn, *args):
    """Gradients of the scalar `fn(*args)` w.r.t. every argument."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.grad(fn, argnums=tuple(range(len(args))))(*args)
    if backend == "tensorflow":
        import tensorflow as tf

        args = [tf.convert_to_tensor(x) for x in args]
        with tf.GradientTape() as tape:
            tape.watch(args)
            loss = fn(*args)
        return tape.gradient(loss, args)
    import torch

    args = [torch.tensor(x, requires_grad=True) for x in args]
    fn(*args).backward()
    return [x.grad for x in args]


def random_problem(length, rng, shape=(2, 3)):
    a = rng.uniform(0.3, 1.0, (shape[0], length, shape[1]))
    b = rng.normal(size=(shape[0], length, shape[1]))
    return a.astype("float32"), b.astype("float32")


@pytest.mark.parametrize("method", PATHS)
@pytest.mark.parametrize("length", [1, 11])
def test_matches_float64_reference(method, length):
    rng = np.random.default_rng(length)
    a, b = random_problem(length, rng)
    h0 = rng.normal(size=(2, 3)).astype("float32")
    for state, reverse in ((None, False), (h0, False), (h0, True)):
        expected = reference(
            a.astype("float64"), b.astype("float64"), state, reverse
        )
        h = linear_recurrence(
            a, b, state, reverse=reverse, method=method, chunk_size=4
        )
        np.testing.assert_allclose(to_numpy(h), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk_size", [1, 3, 16])
def test_chunked_any_chunk_size(chunk_size):
    rng = np.random.default_rng(1)
    a, b = random_problem(11, rng)
    h = linear_recurrence(a, b, method="chunked", chunk_size=chunk_size)
    np.testing.assert_allclose(
        to_numpy(h), reference(a * 1.0, b * 1.0), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("method", PATHS)
def test_complex_matches_reference(method):
    rng = np.random.default_rng(2)
    shape = (2, 11, 3)
    a_re, a_im = rng.uniform(-0.7, 0.7, (2,) + shape)
    b_re, b_im = rng.normal(size=(2,) + shape)
    s_re, s_im = rng.normal(size=(2, 2, 3))
    a, b, s = a_re + 1j * a_im, b_re + 1j * b_im, s_re + 1j * s_im
    for reverse in (False, True):
        h_re, h_im = complex_linear_recurrence(
            (a_re, a_im),
            (b_re, b_im),
            (s_re, s_im),
            reverse=reverse,
            method=method,
            chunk_size=4,
        )
        expected = reference(a, b, s, reverse)
        h = to_numpy(h_re) + 1j * to_numpy(h_im)
        np.testing.assert_allclose(h, expected, rtol=1e-5, atol=1e-5)


def test_decay_broadcasts_over_batch_and_time():
    rng = np.random.default_rng(3)
    a = rng.uniform(0.5, 1.0, (1, 1, 3)).astype("float32")
    b = rng.normal(size=(2, 11, 3)).astype("float32")
    for method in PATHS:
        h = linear_recurrence(a, b, method=method, chunk_size=4)
        np.testing.assert_allclose(
            to_numpy(h), reference(a * 1.0, b * 1.0), rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize("method", PATHS)
def test_gradients_match_adjoint_recurrence(method):
    """dL/db_t = g_t with g_t = w_t + a_{t+1} g_{t+1}; dL/da_t = g_t h_{t-1}."""
    rng = np.random.default_rng(4)
    a, b = random_problem(11, rng)
    w = rng.normal(size=b.shape).astype("float32")

    def loss(a, b):
        h = linear_recurrence(a, b, method=method, chunk_size=4)
        return ops.sum(h * ops.convert_to_tensor(w))

    grad_a, grad_b = (to_numpy(g) for g in gradients(loss, a, b))
    h = reference(a * 1.0, b * 1.0)
    g = reference(
        np.concatenate([a[:, 1:], np.ones_like(a[:, :1])], axis=1) * 1.0,
        w * 1.0,
        reverse=True,
    )
    h_prev = np.concatenate([np.zeros_like(h[:, :1]), h[:, :-1]], axis=1)
    assert np.all(np.isfinite(grad_a)) and np.all(np.isfinite(grad_b))
    np.testing.assert_allclose(grad_b, g, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad_a, g * h_prev, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_inputs_scan_in_float32(dtype):
    rng = np.random.default_rng(5)
    a, b = random_problem(11, rng)
    for method in PATHS:
        h = linear_recurrence(
            ops.cast(a, dtype), ops.cast(b, dtype), method=method
        )
        assert keras.backend.standardize_dtype(h.dtype) == "float32"
        expected = reference(
            to_numpy(ops.cast(a, dtype)), to_numpy(ops.cast(b, dtype))
        )
        np.testing.assert_allclose(to_numpy(h), expected, rtol=1e-5, atol=1e-5)


def assert_compiles_to(fn, a, b, expected):
    """`fn(a, b)` under jax.jit, tf.function + XLA (and with an unknown
    length), or PyTorch eager equals `expected`."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        h = jax.jit(fn)(a, b)
    elif backend == "tensorflow":
        import tensorflow as tf

        h = tf.function(fn, jit_compile=True, autograph=False)(a, b)
        spec = tf.TensorSpec((None, None) + a.shape[2:], "float32")
        graph_fn = tf.function(
            fn, input_signature=[spec, spec], autograph=False
        )
        np.testing.assert_allclose(
            to_numpy(graph_fn(a, b)), expected, rtol=1e-5, atol=1e-5
        )
    else:
        h = fn(a, b)
    np.testing.assert_allclose(to_numpy(h), expected, rtol=1e-5, atol=1e-5)


def test_compiles_with_static_and_unknown_length():
    """The default path compiles: jax.jit, tf.function + XLA, unknown L."""
    rng = np.random.default_rng(6)
    a, b = random_problem(11, rng)
    assert_compiles_to(linear_recurrence, a, b, reference(a * 1.0, b * 1.0))


def test_default_chunk_size_is_about_sqrt_length():
    assert default_chunk_size(1024) == 32
    assert default_chunk_size(16) == 8
    assert default_chunk_size(1 << 20) == 64
    assert default_chunk_size(None) == 32


def test_bad_arguments_raise():
    a = b = np.ones((1, 4, 2), "float32")
    with pytest.raises(ValueError, match="`method` must be one of"):
        linear_recurrence(a, b, method="parallel")
    with pytest.raises(ValueError, match="`chunk_size`"):
        linear_recurrence(a, b, method="chunked", chunk_size=0)
    with pytest.raises(ValueError, match=r"\(batch, length, \.\.\.\)"):
        linear_recurrence(np.ones((4,), "float32"), np.ones((4,), "float32"))
    assert "auto" in METHODS
