"""CES: formula, constraint, modes, Keras citizenship (once per backend)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_ssm.layers import CES
from keras_ssm.optimizers import ssm_adamw
from tests.helpers import assert_mixed_precision_close
from tests.helpers import assert_padding_is_ignored
from tests.helpers import assert_refuses_bad_shapes
from tests.helpers import assert_save_load_roundtrip
from tests.helpers import run_steps
from tests.helpers import to_numpy


def inputs(batch=2, length=16, channels=3, seed=0):
    # One shape for most tests: JAX compiles each op once per shape.
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, channels)).astype("float32")


def ces(ring, steps, **kwargs):
    """CES from its ring `(r_min, r_max)` and steps `(dt_min, dt_max)`."""
    (r_min, r_max), (dt_min, dt_max) = ring, steps
    return CES(r_min=r_min, r_max=r_max, dt_min=dt_min, dt_max=dt_max, **kwargs)


def complex_parameters(layer, dt_scale=1.0):
    """lambda^alpha (constrained), beta, sigmoid(omega) in float64 NumPy.

    Rebuilt from the weights with NumPy's complex numbers: log(lambda) =
    exp(lambda'), alpha = exp(a_re) + i exp(a_im), beta = exp(b) (real
    variant: log(lambda) = -exp(lambda'), alpha = exp(a), beta = exp(b)).
    The Table 3 ablations fix alpha = 1, beta = 1 or drop the shortcut
    (sigmoid(omega) = 0).
    """
    lam = to_numpy(layer.lambda_loglog)
    if layer.complex:
        log_lambda = np.exp(lam[..., 0] + 1j * lam[..., 1])
    else:
        log_lambda = -np.exp(lam[..., 0]) + 0j
    alpha, beta = np.ones_like(log_lambda), np.ones_like(log_lambda)
    if layer.use_alpha:
        a = to_numpy(layer.alpha_log)
        alpha = np.exp(a[..., 0]) + 1j * np.exp(a[..., -1]) * layer.complex
    if layer.use_beta:
        b = to_numpy(layer.beta_log)
        beta = np.exp(b[..., 0] + 1j * b[..., -1] * layer.complex)
    raw = np.exp(alpha * log_lambda)
    modulus = np.abs(raw)
    z = np.where(
        modulus > layer.max_lambda, raw * layer.max_lambda / modulus, raw
    )
    # The step factor multiplies log(z) after the clamp: z -> z^dt_scale
    # on the branch of log whose imaginary part is Im(alpha log lambda).
    log_z = np.log(np.abs(z)) + 1j * np.imag(alpha * log_lambda)
    z = np.exp(dt_scale * log_z)
    omega = 0.0
    if layer.use_omega:
        omega = 1.0 / (1.0 + np.exp(-to_numpy(layer.omega)))
    return raw, z, beta, omega


def reference_output(layer, u, dt_scale=1.0):
    """Direct float64 recurrence y_t = (1 - z) beta x_t + z y_{t-1}.

    The backward smoothing runs from the end and sees only strictly future
    steps (taps at lags -1, -2, ...).
    """
    _, z, beta, omega = complex_parameters(layer, dt_scale)
    batch, length, channels = u.shape
    out = omega * u.astype(np.float64)
    y = np.zeros((batch, channels), np.complex128)
    for t in range(length):
        y = (1 - z[0]) * beta[0] * u[:, t] + z[0] * y
        out[:, t] += y.real
    if layer.bidirectional:
        s = np.zeros((batch, channels), np.complex128)
        for t in reversed(range(length)):
            out[:, t] += s.real
            s = (1 - z[1]) * beta[1] * u[:, t] + z[1] * s
    return out


def gradients(loss_fn, variables):
    """Gradients of the scalar `loss_fn()` w.r.t. Keras `variables`."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def stateless_loss(values):
            mapping = list(zip(variables, values))
            with keras.StatelessScope(state_mapping=mapping):
                return loss_fn()

        return jax.jit(jax.grad(stateless_loss))([v.value for v in variables])
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn()
        return tape.gradient(loss, [v.value for v in variables])
    for v in variables:
        v.value.grad = None
    loss_fn().backward()
    return [v.value.grad for v in variables]


@pytest.mark.parametrize("complex_", [True, False])
def test_dt_scale_matches_numpy_recurrence_and_step(complex_):
    # alpha is the step: z = lambda^(alpha dt_scale), clamped before scaling.
    layer = ces((0.3, 0.99), (0.1, 1.0), complex=complex_)
    u = inputs()
    y = to_numpy(layer(u, dt_scale=0.25))
    np.testing.assert_allclose(
        y, reference_output(layer, u, 0.25), rtol=1e-4, atol=1e-4
    )
    assert not np.allclose(y, to_numpy(layer(u)), atol=1e-3)
    layer.dt_scale = 0.25  # the attribute is the default of call and step
    np.testing.assert_allclose(to_numpy(layer(u)), y, atol=1e-6)
    np.testing.assert_allclose(run_steps(layer, u), y, atol=1e-5)


def test_temporal_refinement_converges():
    # The same smooth signal sampled 4x and 8x more finely, with the step
    # scaled to match, gives nearly the same outputs: the layer samples one
    # continuous-time system.
    from keras_ssm.analysis import model_continuity

    t = np.linspace(0, 2, 256, endpoint=False)
    x = (np.sin(2 * np.pi * t)[None, :, None] * np.ones((1, 1, 4))).astype(
        "float32"
    )
    layer = ces((0.5, 0.9), (0.5, 1.0))
    errors = model_continuity(layer, x, refinements=(1, 4, 8))["rel_rmse"]
    assert errors[0, 1] < errors[0, 0] / 2


# The full layer and the Table 3 switches, each one factor removed.
ABLATIONS = {
    "full": {},
    "no alpha": {"use_alpha": False},
    "no beta": {"use_beta": False},
    "no omega": {"use_omega": False},
}


@pytest.mark.parametrize("ablation", list(ABLATIONS))
@pytest.mark.parametrize("complex_", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_call_matches_numpy_recurrence(ablation, complex_, bidirectional):
    # A wide ring, so that some channels decay fast and some slowly; its
    # outer edge keeps memory over the 16 steps even without alpha, where
    # lambda itself is the factor.
    layer = ces(
        (0.3, 0.99),
        (0.1, 1.0),
        complex=complex_,
        bidirectional=bidirectional,
        **ABLATIONS[ablation],
    )
    u = inputs()
    y = to_numpy(layer(u))
    np.testing.assert_allclose(
        y, reference_output(layer, u), rtol=1e-4, atol=1e-4
    )


def _alpha_of_one(alpha_log):
    """alpha weights (log parts) with alpha = exp(0) + i exp(-1e4) = 1."""
    value = np.zeros_like(alpha_log)
    value[..., 1] = -1e4
    return value


def test_ablations_remove_exactly_their_factor():
    # An ablated layer equals the full layer whose removed factor is set to
    # its neutral value: alpha = exp(0) + i exp(-1e4) = 1, beta = exp(0) =
    # 1, sigmoid(omega = -1e4) = 0; and it has no weight for that factor.
    u = inputs()
    neutral = {
        "no alpha": ("ces_alpha", _alpha_of_one),
        "no beta": ("ces_beta", np.zeros_like),
        "no omega": ("ces_omega", lambda w: np.full_like(w, -1e4)),
    }
    for ablation, (removed, value) in neutral.items():
        full = ces((0.5, 0.95), (0.1, 1.0))
        layer = ces((0.5, 0.95), (0.1, 1.0), **ABLATIONS[ablation])
        full.build(u.shape)
        layer.build(u.shape)
        names = [w.name for w in layer.weights]
        assert removed not in names and len(names) == 3, names
        full_size = {w.name: int(np.prod(w.shape)) for w in full.weights}
        assert layer.count_params() == 7 * 3 - full_size[removed]
        weights = {w.name: to_numpy(w) for w in full.weights}
        weights[removed] = value(weights[removed])
        full.set_weights([weights[w.name] for w in full.weights])
        layer.set_weights([weights[name] for name in names])
        np.testing.assert_allclose(
            to_numpy(layer(u)), to_numpy(full(u)), rtol=1e-5, atol=1e-5
        )
    # Without alpha the factor is lambda itself (here |lambda| in the ring).
    layer = CES(r_min=0.5, r_max=0.6, max_phase=0.0, use_alpha=False)
    layer.build(u.shape)
    modulus = np.hypot(*[to_numpy(p) for p in layer.smoothing_factor()])
    assert np.all((modulus > 0.5 - 1e-5) & (modulus < 0.6 + 1e-5))


@pytest.mark.parametrize("ablation", list(ABLATIONS))
@pytest.mark.parametrize("complex_", [True, False])
def test_step_matches_call(ablation, complex_):
    layer = ces(
        (0.5, 0.95), (0.1, 1.0), complex=complex_, **ABLATIONS[ablation]
    )
    u = inputs()
    y = to_numpy(layer(u))
    np.testing.assert_allclose(run_steps(layer, u), y, atol=1e-5)


def test_kernel_formula_and_shape():
    layer = ces((0.5, 0.9), (0.5, 2), bidirectional=True)
    layer.build((1, 8, 4))
    k = to_numpy(layer.kernel(10))
    assert k.shape == (2, 4, 10)
    _, z, beta, _ = complex_parameters(layer)
    n = np.arange(10)
    expected = np.real(beta[..., None] * (1 - z[..., None]) * z[..., None] ** n)
    np.testing.assert_allclose(k, expected, rtol=1e-5, atol=1e-6)


def test_causal_and_bidirectional_sees_the_future():
    u = inputs()
    changed = u.copy()
    changed[:, 10:] += 1.0
    causal = ces((0.5, 0.9), (0.5, 1.0))
    y1, y2 = to_numpy(causal(u)), to_numpy(causal(changed))
    np.testing.assert_allclose(y1[:, :10], y2[:, :10], atol=1e-5)
    assert np.abs(y1[:, 10:] - y2[:, 10:]).max() > 1e-3
    both = ces((0.5, 0.9), (0.5, 1.0), bidirectional=True)
    y1, y2 = to_numpy(both(u)), to_numpy(both(changed))
    assert np.abs(y1[:, :10] - y2[:, :10]).max() > 1e-3


def test_ring_initialisation_covers_the_annulus():
    layer = ces((0.4, 0.9), (0.01, 0.1), max_phase=0.5)
    layer.build((1, 4, 2000))
    lam = to_numpy(layer.lambda_loglog)
    log_lambda = np.exp(lam[..., 0] + 1j * lam[..., 1])
    radius, phase = np.exp(log_lambda.real), log_lambda.imag
    assert radius.min() >= 0.4 - 1e-5 and radius.max() <= 0.9 + 1e-5
    assert phase.min() >= -1e-6 and phase.max() <= 0.5 + 1e-6
    # Uniform over the area: |lambda|^2 uniform in [r_min^2, r_max^2].
    np.testing.assert_allclose(np.mean(radius**2), (0.16 + 0.81) / 2, atol=0.02)
    np.testing.assert_allclose(np.mean(phase), 0.25, atol=0.02)
    a = to_numpy(layer.alpha_log)
    np.testing.assert_array_equal(a[..., 0], a[..., 1])
    assert np.exp(a).min() >= 0.01 - 1e-6 and np.exp(a).max() <= 0.1 + 1e-6
    b = to_numpy(layer.beta_log)
    np.testing.assert_allclose(b.std(), 0.2, atol=0.02)


@pytest.mark.parametrize("complex_", [True, False])
def test_stable_initialisation_is_a_fixed_point(complex_):
    layer = CES(init="stable", stable_lambda=0.3, complex=complex_)
    layer.build((1, 4, 5))
    lam = to_numpy(layer.lambda_loglog)
    if complex_:
        lambda_ = np.exp(np.exp(lam[..., 0] + 1j * lam[..., 1]))
    else:
        lambda_ = np.exp(-np.exp(lam[..., 0]))
    np.testing.assert_allclose(lambda_, 0.3 + 0j, atol=1e-6)


def test_constraint_holds_after_a_step_past_max_lambda():
    layer = ces((0.9, 0.95), (1.0, 1.0), max_lambda=0.97)
    u = inputs()
    layer(u)
    raw, _, _, _ = complex_parameters(layer)
    assert np.abs(raw).max() < 0.97  # unconstrained before the step
    variables = [layer.lambda_loglog, layer.alpha_log]

    def longer_memory():  # minimising it pushes |lambda^alpha| up
        return -ops.sum(layer.log_smoothing_factor()[0])

    grads = gradients(longer_memory, variables)
    keras.optimizers.SGD(1.0).apply_gradients(zip(grads, variables))
    raw, z, _, _ = complex_parameters(layer)
    assert np.abs(raw).max() > 0.97  # the step went past the bound ...
    decay = to_numpy(layer.smoothing_factor())
    modulus = np.hypot(decay[0], decay[1])
    assert modulus.max() <= 0.97 + 1e-6  # ... the layer's factor did not
    np.testing.assert_allclose(modulus, np.abs(z), rtol=1e-5)
    np.testing.assert_allclose(
        to_numpy(layer(u)), reference_output(layer, u), rtol=1e-4, atol=1e-4
    )


def test_lambda_gradients_finite_near_the_unit_circle():
    layer = ces(
        (0.99999, 0.999999), (1e-3, 1e-3), max_phase=0.01, bidirectional=True
    )
    u = inputs()
    layer(u)

    def loss():
        return ops.mean(ops.square(layer(u)))

    grads = gradients(loss, layer.trainable_variables)
    for variable, grad in zip(layer.trainable_variables, grads):
        grad = to_numpy(grad)
        assert np.all(np.isfinite(grad)), variable.name
        assert np.abs(grad).max() > 0, variable.name


def test_lambda_and_alpha_get_the_ssm_optimizer_treatment():
    layer = CES()
    layer.build((1, 4, 3))
    assert all(w.dtype == "float32" for w in layer.weights)
    assert layer.count_params() == 7 * 3
    optimizer = ssm_adamw(1e-2, weight_decay=0.5, ssm_learning_rate=1e-4)
    variables = [layer.lambda_loglog, layer.alpha_log]
    variables += [layer.beta_log, layer.omega]
    before = [to_numpy(v) for v in variables]
    grads = [ops.ones(v.shape) for v in variables]
    optimizer.apply_gradients(zip(grads, variables))
    step = [np.abs(to_numpy(v) - b).max() for v, b in zip(variables, before)]
    # Adam's first step moves a weight by ~lr: lambda' and alpha by the SSM
    # lr without decay; beta and omega by the full lr.
    np.testing.assert_allclose(step[:2], 1e-4, rtol=1e-2)
    assert min(step[2:]) > 5e-3


@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_steps_contribute_nothing(bidirectional):
    layer = ces((0.5, 0.9), (0.5, 1.0), bidirectional=bidirectional)
    assert_padding_is_ignored(layer, inputs(), valid=11)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_float32_kernels(policy):
    reference = CES(bidirectional=True, dtype="float32")
    layer = CES(bidirectional=True, dtype=policy)
    assert_mixed_precision_close(reference, layer, policy, inputs())
    assert all(w.dtype == "float32" for w in layer.weights)
    assert keras.backend.standardize_dtype(layer.kernel(16).dtype) == "float32"


def test_variable_length_model():
    model = keras.Sequential(
        [keras.Input((None, 3)), CES(bidirectional=True), keras.layers.Dense(2)]
    )
    for length in (5, 13):
        assert model(inputs(length=length)).shape == (2, length, 2)


def test_config_round_trip():
    layer = CES(
        r_min=0.2,
        r_max=0.8,
        max_phase=0.314,
        init="stable",
        stable_lambda=0.7,
        dt_min=0.01,
        dt_max=0.2,
        max_lambda=0.99,
        complex=False,
        bidirectional=True,
        dropout=0.1,
        use_alpha=False,
        use_beta=False,
        use_omega=False,
        name="ces_cfg",
    )
    config = layer.get_config()
    clone = CES.from_config(config)
    assert clone.get_config() == config
    assert (config["use_alpha"], config["use_beta"]) == (False, False)
    assert config["use_omega"] is False
    # Configs saved before the ablation switches load as the full layer.
    for key in ("use_alpha", "use_beta", "use_omega"):
        config.pop(key)
    old = CES.from_config(config)
    assert old.use_alpha and old.use_beta and old.use_omega


def test_keras_save_and_load_round_trip(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((16, 3)),
            CES(bidirectional=True),
            CES(complex=False, r_min=0.9, r_max=0.999, max_phase=0.314),
            CES(use_alpha=False, use_beta=False, use_omega=False),
        ]
    )
    assert_save_load_roundtrip(model, inputs(), tmp_path)


def test_bidirectional_step_raises():
    layer = CES(bidirectional=True)
    layer(inputs())
    with pytest.raises(ValueError, match="bidirectional"):
        layer.step(inputs()[:, 0], layer.get_initial_state(2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"r_min": 0.9, "r_max": 0.5}, "r_min"),
        ({"r_min": 0.0}, "r_min"),
        ({"r_min": 0.5, "r_max": 1.0}, "r_max"),
        ({"max_lambda": 1.0}, "max_lambda"),
        ({"max_lambda": 0.0}, "max_lambda"),
        ({"max_phase": -1.0}, "max_phase"),
        ({"init": "hippo"}, "init"),
        ({"stable_lambda": 1.5}, "stable_lambda"),
        ({"dt_min": 0.1, "dt_max": 0.01}, "dt_min"),
        ({"dropout": 1.0}, "dropout"),
        ({"use_alpha": "no"}, "use_alpha"),
        ({"use_beta": 0}, "use_beta"),
        ({"use_omega": None}, "use_omega"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CES(**kwargs)


def test_bad_input_shapes_raise():
    assert_refuses_bad_shapes(CES(), 3, step_match="inputs_t")
