"""`keras_ssm.ops.ssd` (Mamba-2's chunked SSD) against float64 references."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_ssm.ops.ssd import default_ssd_chunk_size
from keras_ssm.ops.ssd import segsum
from keras_ssm.ops.ssd import ssd
from tests.helpers import to_numpy
from tests.test_scan import gradients as eager_gradients


def compiled(fn):
    """`fn` under jax.jit on JAX (eager JAX compiles every op on its own)."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    return fn


def gradients(fn, *args):
    """Gradients of the scalar `fn(*args)` w.r.t. every argument."""
    if keras.backend.backend() == "jax":
        import jax

        argnums = tuple(range(len(args)))
        return jax.jit(jax.grad(fn, argnums=argnums))(*args)
    return eager_gradients(fn, *args)


def run_ssd(*args, **kwargs):
    """`ssd` with compiled JAX; the keyword arguments are static."""
    return compiled(lambda *a: ssd(*a, **kwargs))(*args)


def reference_ssd(x, dt, A, B, C, initial_state=None):
    """The per-head recurrence one step at a time, in float64.

    H_t = exp(dt_t A_h) H_{t-1} + dt_t x_t B_t^T, y_t = H_t C_t, with head h
    reading group h // (heads / groups). Returns (y, final state).
    """
    x, dt, A, B, C = (np.asarray(v, np.float64) for v in (x, dt, A, B, C))
    batch, length, heads, headdim = x.shape
    per_group = heads // B.shape[2]
    if initial_state is None:
        h = np.zeros((batch, heads, headdim, B.shape[3]))
    else:
        h = np.array(initial_state, np.float64)
    ys = []
    for t in range(length):
        b_t = np.repeat(B[:, t], per_group, axis=1)  # (batch, heads, N)
        c_t = np.repeat(C[:, t], per_group, axis=1)
        decay = np.exp(dt[:, t] * A)[:, :, None, None]
        drive = (dt[:, t, :, None] * x[:, t])[..., None] * b_t[:, :, None, :]
        h = decay * h + drive
        ys.append(np.einsum("bhpn,bhn->bhp", h, c_t))
    return np.stack(ys, axis=1), h


def quadratic_ssd(x, dt, A, B, C):
    """The dual form y = (L o C B^T) (dt x) with the full (L, L) mask."""
    x, dt, A, B, C = (np.asarray(v, np.float64) for v in (x, dt, A, B, C))
    per_group = x.shape[2] // B.shape[2]
    B = np.repeat(B, per_group, axis=2)
    C = np.repeat(C, per_group, axis=2)
    cum = np.cumsum(dt * A, axis=1)  # (batch, length, heads)
    diff = cum[:, :, None, :] - cum[:, None, :, :]  # [t, s] = a_{s+1..t}
    causal = np.tril(np.ones((x.shape[1],) * 2, bool))[None, :, :, None]
    decay = np.where(causal, np.exp(np.where(causal, diff, 0.0)), 0.0)
    scores = np.einsum("bthn,bshn->btsh", C, B) * decay
    return np.einsum("btsh,bshp->bthp", scores, x * dt[..., None])


def random_problem(
    length, seed, batch=2, heads=4, headdim=3, groups=2, d_state=5
):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, length, heads, headdim))
    dt = rng.uniform(0.001, 0.5, (batch, length, heads))
    dt[:, ::5] = 0.0  # steps that leave the state unchanged (padding)
    A = -rng.uniform(0.5, 4.0, heads)
    B = rng.normal(size=(batch, length, groups, d_state))
    C = rng.normal(size=(batch, length, groups, d_state))
    h0 = rng.normal(size=(batch, heads, headdim, d_state))
    return tuple(v.astype("float32") for v in (x, dt, A, B, C, h0))


# 13 steps: chunks of 1, 3 (partial last chunk of 1), 8 (partial, 5) and
# one chunk longer than the sequence.
@pytest.mark.parametrize("chunk_size", [1, 3, 8, 32])
def test_matches_float64_recurrence(chunk_size):
    x, dt, A, B, C, h0 = random_problem(13, seed=chunk_size)
    y = run_ssd(x, dt, A, B, C, chunk_size=chunk_size)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    expected, _ = reference_ssd(x, dt, A, B, C)
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-5, atol=1e-5)
    y, final = compiled(
        lambda *a, h: ssd(
            *a, chunk_size, initial_state=h, return_final_state=True
        )
    )(x, dt, A, B, C, h=h0)
    expected, expected_final = reference_ssd(x, dt, A, B, C, h0)
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        to_numpy(final), expected_final, rtol=1e-5, atol=1e-5
    )


def test_equals_the_quadratic_form_and_continues_from_its_state():
    x, dt, A, B, C, _ = random_problem(9, seed=7, groups=1)
    np.testing.assert_allclose(
        to_numpy(run_ssd(x, dt, A, B, C, chunk_size=4)),
        quadratic_ssd(x, dt, A, B, C),
        rtol=1e-5,
        atol=1e-5,
    )
    # Two halves chained through the final state equal the whole sequence.
    first, state = run_ssd(
        x[:, :5],
        dt[:, :5],
        A,
        B[:, :5],
        C[:, :5],
        chunk_size=2,
        return_final_state=True,
    )
    second = compiled(lambda *a, h: ssd(*a, 2, initial_state=h))(
        x[:, 5:], dt[:, 5:], A, B[:, 5:], C[:, 5:], h=state
    )
    np.testing.assert_allclose(
        np.concatenate([to_numpy(first), to_numpy(second)], axis=1),
        quadratic_ssd(x, dt, A, B, C),
        rtol=1e-5,
        atol=1e-5,
    )


def sequential_ssd(x, dt, A, B, C):
    """The recurrence in keras.ops, one step at a time (for gradients)."""
    per_group = x.shape[2] // B.shape[2]
    h = ops.zeros(tuple(x.shape[:1]) + (x.shape[2], x.shape[3], B.shape[3]))
    ys = []
    for t in range(x.shape[1]):
        b_t = ops.repeat(B[:, t], per_group, axis=1)
        c_t = ops.repeat(C[:, t], per_group, axis=1)
        decay = ops.exp(dt[:, t] * A)[:, :, None, None]
        drive = (dt[:, t, :, None] * x[:, t])[..., None] * b_t[:, :, None, :]
        h = decay * h + drive
        ys.append(ops.sum(h * c_t[:, :, None, :], axis=-1))
    return ops.stack(ys, axis=1)


def test_gradients_equal_the_sequential_form():
    problem = random_problem(7, seed=3)[:5]
    w = np.random.default_rng(4).normal(size=(2, 7, 4, 3)).astype("float32")

    def loss_of(fn):
        def loss(*args):
            return ops.sum(fn(*args) * ops.convert_to_tensor(w))

        return loss

    chunked = gradients(loss_of(lambda *a: ssd(*a, chunk_size=3)), *problem)
    sequential = gradients(loss_of(sequential_ssd), *problem)
    for name, g, ref in zip("x dt A B C".split(), chunked, sequential):
        assert np.all(np.isfinite(to_numpy(g))), name
        np.testing.assert_allclose(
            to_numpy(g), to_numpy(ref), rtol=1e-4, atol=1e-4, err_msg=name
        )


def test_strong_decay_stays_finite_in_values_and_gradients():
    """dt A down to -5e4 per step: no exp of a large positive number."""
    x, dt, A, B, C, _ = random_problem(16, seed=5)
    A = A * 2000.0
    dt = dt * 10.0
    y = run_ssd(x, dt, A, B, C, chunk_size=8)
    expected, _ = reference_ssd(x, dt, A, B, C)
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-4, atol=1e-4)

    def loss(*args):
        return ops.sum(ops.square(ssd(*args, chunk_size=8)))

    for g in gradients(loss, x, dt, A, B, C):
        assert np.all(np.isfinite(to_numpy(g)))


def test_segsum_is_the_causal_log_decay():
    a = -np.array([[0.5, 1.0, 2.0, 0.25]], "float32")
    s = to_numpy(segsum(ops.convert_to_tensor(a)))[0]
    for t in range(4):
        for u in range(4):
            want = a[0, u + 1 : t + 1].sum() if u <= t else -np.inf
            assert s[t, u] == pytest.approx(want)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_inputs_run_in_float32(dtype):
    x, dt, A, B, C, _ = random_problem(11, seed=2)
    half = [ops.cast(v, dtype) for v in (x, dt, A, B, C)]
    y = run_ssd(*half, chunk_size=4)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    expected, _ = reference_ssd(*(to_numpy(v) for v in half))
    np.testing.assert_allclose(to_numpy(y), expected, rtol=0.02, atol=0.05)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="symbolic lengths are a graph-mode (TensorFlow) notion",
)
def test_unknown_length_in_a_graph():
    import tensorflow as tf

    x, dt, A, B, C, _ = random_problem(13, seed=1)
    spec = [
        tf.TensorSpec((None, None) + v.shape[2:], "float32") for v in (x, dt)
    ] + [tf.TensorSpec(A.shape, "float32")]
    spec += [tf.TensorSpec((None, None) + B.shape[2:], "float32")] * 2
    fn = tf.function(lambda *a: ssd(*a, chunk_size=4), input_signature=spec)
    for length in (13, 6):
        args = (x[:, :length], dt[:, :length], A, B[:, :length], C[:, :length])
        expected, _ = reference_ssd(*args)
        np.testing.assert_allclose(
            to_numpy(fn(*args)), expected, rtol=1e-5, atol=1e-5
        )


def test_default_chunk_size_is_a_positive_int():
    size = default_ssd_chunk_size()
    assert isinstance(size, int) and size >= 1
    x, dt, A, B, C, _ = random_problem(5, seed=0)
    expected, _ = reference_ssd(x, dt, A, B, C)
    np.testing.assert_allclose(
        to_numpy(run_ssd(x, dt, A, B, C)), expected, rtol=1e-5, atol=1e-5
    )


def test_bad_arguments_raise_naming_them():
    x, dt, A, B, C, h0 = random_problem(6, seed=0)
    with pytest.raises(ValueError, match="`x` must have shape"):
        ssd(x[..., 0], dt, A, B, C)
    with pytest.raises(ValueError, match="`dt` must have shape"):
        ssd(x, dt[:, :5], A, B, C)
    with pytest.raises(ValueError, match="`A` must have shape"):
        ssd(x, dt, A[:3], B, C)
    with pytest.raises(ValueError, match="`A` must have shape"):
        ssd(x, dt, A[None], B, C)
    with pytest.raises(ValueError, match="`C` must have shape"):
        ssd(x, dt, A, B, C[..., :4])
    with pytest.raises(ValueError, match="multiple of the number of groups"):
        ssd(x, dt, A, B[:, :, :1].repeat(3, axis=2), C[:, :, :1].repeat(3, 2))
    for bad in (0, 2.0, True, "8"):
        with pytest.raises(ValueError, match="`chunk_size`"):
            ssd(x, dt, A, B, C, chunk_size=bad)
    with pytest.raises(ValueError, match="`initial_state`"):
        ssd(x, dt, A, B, C, initial_state=h0[:, :2])
    with pytest.raises(ValueError, match="`return_final_state`"):
        ssd(x, dt, A, B, C, return_final_state=1)
    run_ssd(x, dt, A, B, C, chunk_size=np.int64(4))  # NumPy ints: sizes
