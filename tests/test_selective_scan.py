"""`selective_scan` (Mamba's scan with its readout) against float64 NumPy."""

import keras
import numpy as np
import pytest

from keras_ssm.ops.scan import default_log_method
from keras_ssm.ops.selective_scan import default_selective_method
from keras_ssm.ops.selective_scan import selective_scan
from tests.helpers import to_numpy
from tests.test_scan import gradients

PATHS = ("streaming", "sequential", "logspace", "chunked")


def reference(u, dt, A, B, C):
    """The recurrence one step at a time in float64."""
    u, dt, A, B, C = (np.asarray(x, np.float64) for x in (u, dt, A, B, C))
    h = np.zeros((u.shape[0],) + A.shape)
    ys = []
    for t in range(u.shape[1]):
        decay = np.exp(dt[:, t, :, None] * A)
        h = decay * h + (dt[:, t] * u[:, t])[..., None] * B[:, t, None, :]
        ys.append(np.sum(h * C[:, t, None, :], axis=-1))
    return np.stack(ys, axis=1)


def random_problem(length, rng, batch=2, d_inner=3, d_state=4):
    u = rng.normal(size=(batch, length, d_inner))
    dt = rng.uniform(0.001, 0.5, (batch, length, d_inner))
    dt[:, ::4] = 0.0  # steps that leave the state unchanged (masking)
    A = -rng.uniform(0.5, 4.0, (d_inner, d_state))
    B = rng.normal(size=(batch, length, d_state))
    C = rng.normal(size=(batch, length, d_state))
    return tuple(x.astype("float32") for x in (u, dt, A, B, C))


# 13 steps leave a partial last chunk of 4; 150 steps make 38 chunks.
@pytest.mark.parametrize("method", PATHS + ("auto",))
@pytest.mark.parametrize("length", [1, 13, 150])
def test_matches_float64_reference(method, length):
    problem = random_problem(length, np.random.default_rng(length))
    y = selective_scan(*problem, method=method, chunk_size=4)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    np.testing.assert_allclose(
        to_numpy(y), reference(*problem), rtol=1e-5, atol=1e-5
    )


def test_streaming_gradients_equal_the_materialised_scan():
    problem = random_problem(37, np.random.default_rng(3))
    w = np.random.default_rng(4).normal(size=(2, 37, 3)).astype("float32")

    def loss_of(method):
        def loss(*args):
            y = selective_scan(*args, method=method, chunk_size=8)
            return keras.ops.sum(y * keras.ops.convert_to_tensor(w))

        return loss

    expected = gradients(loss_of("sequential"), *problem)
    found = gradients(loss_of("streaming"), *problem)
    for name, g, e in zip("u dt A B C".split(), found, expected):
        e = to_numpy(e)
        assert np.all(np.isfinite(e)) and np.any(e != 0), name
        np.testing.assert_allclose(
            to_numpy(g), e, rtol=1e-4, atol=1e-5, err_msg=name
        )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_inputs_are_scanned_in_float32(dtype):
    problem = random_problem(20, np.random.default_rng(5))
    low = [keras.ops.cast(x, dtype) for x in problem]
    y = selective_scan(*low, method="auto")
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    exact = reference(*(to_numpy(keras.ops.cast(x, "float32")) for x in low))
    np.testing.assert_allclose(to_numpy(y), exact, rtol=1e-4, atol=1e-4)


def _array_shapes(jaxpr):
    """Shapes of every value computed in a jaxpr, nested jaxprs included."""
    from jax.extend import core

    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            yield tuple(var.aval.shape)
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else [param]:
                if isinstance(sub, core.ClosedJaxpr):
                    yield from _array_shapes(sub.jaxpr)
                elif isinstance(sub, core.Jaxpr):
                    yield from _array_shapes(sub)


def test_streaming_never_builds_a_length_by_state_tensor():
    """Forward and backward hold no (batch, length, d_inner, d_state) array:
    nothing larger than the inputs (the checkpoints, length / 16 states,
    and one recomputed chunk are smaller still)."""
    if keras.backend.backend() != "jax":
        pytest.skip("the streaming scan is JAX's")
    import jax

    length = 256
    problem = random_problem(length, np.random.default_rng(6))

    def loss(method):
        return lambda *args: keras.ops.sum(
            selective_scan(*args, method=method, chunk_size=16)
        )

    def largest(method):
        grad = jax.grad(loss(method), argnums=(0, 1, 2, 3, 4))
        jaxpr = jax.make_jaxpr(grad)(*problem).jaxpr
        return max(np.prod(s) for s in _array_shapes(jaxpr))

    full = 2 * length * 3 * 4  # batch * length * d_inner * d_state
    assert largest("sequential") >= full  # the check sees such tensors
    inputs = max(np.prod(x.shape) for x in problem)
    assert largest("streaming") <= inputs < full


def test_auto_choice_per_backend():
    method = default_selective_method()
    if keras.backend.backend() == "jax":
        import jax

        cpu = jax.default_backend() == "cpu"
        assert method == ("streaming" if cpu else default_log_method())
    elif keras.backend.backend() == "torch":
        import torch

        from keras_ssm.ops.scan import on_accelerator

        assert method == default_log_method()  # gradients on: materialised
        with torch.no_grad():
            inference = default_selective_method()
        assert inference == (
            default_log_method() if on_accelerator() else "streaming"
        )
    else:
        assert method == default_log_method()


def test_bad_arguments_raise():
    problem = random_problem(5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="`method`"):
        selective_scan(*problem, method="parallel")
    u, dt, A, B, C = problem
    with pytest.raises(ValueError, match="`A` must have rank 2"):
        selective_scan(u, dt, A[None], B, C)
    with pytest.raises(ValueError, match="`u` must have rank 3"):
        selective_scan(u[0], dt, A, B, C)
    # Sizes that would broadcast are refused, naming the argument.
    with pytest.raises(ValueError, match=r"`B` must have shape \(2, 5, "):
        selective_scan(u, dt, A, B[:1], C)
    with pytest.raises(ValueError, match="`C` must have shape"):
        selective_scan(u, dt, A, B, C[:, :4])
    with pytest.raises(ValueError, match="`dt` must have shape"):
        selective_scan(u, dt[..., :1], A, B, C)
    with pytest.raises(ValueError, match="`A` must have shape"):
        selective_scan(u, dt, A[:1], B, C)
