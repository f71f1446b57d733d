"""S4D: formula, modes, Keras citizenship, errors (run once per backend)."""

import keras
import numpy as np
import pytest

from keras_ssm.layers import S4D
from keras_ssm.layers import S4DBlock
from keras_ssm.layers.s4d import hippo_legs_input
from keras_ssm.optimizers import SSMAdamW
from keras_ssm.optimizers import ssm_adamw
from tests.helpers import assert_mixed_precision_close
from tests.helpers import assert_padding_is_ignored
from tests.helpers import assert_refuses_bad_shapes
from tests.helpers import assert_save_load_roundtrip
from tests.helpers import layer_gradients
from tests.helpers import run_steps
from tests.helpers import to_numpy


def discrete_system(layer, dt_scale=1.0):
    """dA, dB (complex128, (H, N/2)), C ((dirs, H, N/2)), D from weights."""
    dt = np.exp(to_numpy(layer.log_dt))[:, None] * dt_scale
    A = -np.exp(to_numpy(layer.log_A_real)) + 1j * to_numpy(layer.A_imag)
    if layer.discretization == "zoh":
        dA = np.exp(dt * A)
        dB = (dA - 1) / A
    else:
        dA = (1 + dt * A / 2) / (1 - dt * A / 2)
        dB = dt / (1 - dt * A / 2)
    C = to_numpy(layer.C_real) + 1j * to_numpy(layer.C_imag)
    return dA, dB, C, to_numpy(layer.D)


def recurrence(dA, dB, C, u):
    """x_k = dA x_{k-1} + dB u_k, y_k = 2 Re(C x_k), in float64."""
    x = np.zeros((u.shape[0],) + dA.shape, dtype=np.complex128)
    ys = []
    for k in range(u.shape[1]):
        x = dA * x + dB * u[:, k, :, None]
        ys.append(2 * np.real((C * x).sum(-1)))
    return np.stack(ys, axis=1)


def reference_output(layer, u, dt_scale=1.0):
    """Direct recurrence; the bidirectional part runs on the reversed input
    and sees only strictly future steps (taps at lags -1, -2, ...)."""
    dA, dB, C, D = discrete_system(layer, dt_scale)
    y = recurrence(dA, dB, C[0], u) + D * u
    if layer.bidirectional:
        backward = recurrence(dA, dB, C[1], u[:, ::-1])[:, ::-1]
        y[:, :-1] += backward[:, 1:]
    return y


def inputs(batch=2, length=24, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, channels)).astype("float32")


@pytest.mark.parametrize("init", ["lin", "inv", "real", "legs"])
@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
def test_call_and_step_match_numpy_recurrence(init, discretization):
    layer = S4D(d_state=8, init=init, discretization=discretization)
    u = inputs()
    layer.build(u.shape)
    expected = reference_output(layer, u)
    np.testing.assert_allclose(
        to_numpy(layer(u)), expected, rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        run_steps(layer, u), expected, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
def test_bidirectional_matches_two_sided_reference(discretization):
    layer = S4D(d_state=6, bidirectional=True, discretization=discretization)
    u = inputs(length=17)
    y = to_numpy(layer(u))
    np.testing.assert_allclose(
        y, reference_output(layer, u), rtol=1e-4, atol=1e-4
    )


def test_bidirectional_step_raises():
    layer = S4D(d_state=4, bidirectional=True)
    layer(inputs())
    with pytest.raises(ValueError, match="bidirectional"):
        layer.step(inputs()[:, 0], layer.get_initial_state(2))


def test_hippo_legs_input_is_the_projected_legs_b():
    # V unitary: the unclipped projection keeps |B|^2 = sum (2n + 1) = N^2,
    # split evenly between the two halves of each conjugate pair.
    for n in (4, 8, 16):
        full = hippo_legs_input(n, clip=np.inf)
        np.testing.assert_allclose(2 * np.sum(np.abs(full) ** 2), n * n)
        clipped = hippo_legs_input(n)
        np.testing.assert_allclose(clipped.real, full.real)
        assert np.all(np.abs(clipped.imag) <= 2.0)
        assert np.any(np.abs(full.imag) > 2.0)  # the clip is active


def test_legs_init_starts_C_at_C_times_projected_B():
    """Per mode, E|C|^2 = |B_n|^2 for C ~ CN(0, 1) times the LegS B_n."""
    layer = S4D(d_state=8, init="legs")
    layer.build((None, None, 4000))
    power = to_numpy(layer.C_real) ** 2 + to_numpy(layer.C_imag) ** 2
    expected = np.abs(hippo_legs_input(8)) ** 2
    assert np.ptp(expected) > 2.0  # far from the B = 1 of the other inits
    np.testing.assert_allclose(power[0].mean(axis=0), expected, rtol=0.06)
    lin = S4D(d_state=8, init="lin")
    lin.build((None, None, 4000))
    power = to_numpy(lin.C_real) ** 2 + to_numpy(lin.C_imag) ** 2
    np.testing.assert_allclose(power[0].mean(axis=0), 1.0, rtol=0.06)


@pytest.mark.parametrize("make", [S4D, S4DBlock])
def test_dropout_is_tied_over_time(make):
    """One mask per (sequence, channel), as the reference's DropoutNd."""
    layer = make(d_state=4, dropout=0.5)
    x = np.ones((4, 16, 64), "float32")
    if make is S4D:
        layer.build(x.shape)
        # Remove the SSM part: y = D u, with D = 1.
        layer.C_real.assign(np.zeros(layer.C_real.shape, "float32"))
        layer.C_imag.assign(np.zeros(layer.C_imag.shape, "float32"))
        layer.D.assign(np.ones(layer.D.shape, "float32"))
        y = to_numpy(layer(x, training=True))
    else:
        y = to_numpy(layer.dropout_layer(x, training=True))
    dropped = y == 0
    # Every channel is either dropped at all steps or at none.
    assert np.all(dropped == dropped[:, :1, :])
    assert 0.3 < dropped.mean() < 0.7


def test_dt_scale_multiplies_dt_at_call_time():
    layer = S4D(d_state=4)
    u = inputs()
    y = to_numpy(layer(u, dt_scale=0.5))
    np.testing.assert_allclose(
        y, reference_output(layer, u, dt_scale=0.5), rtol=1e-4, atol=1e-4
    )
    assert np.abs(y - to_numpy(layer(u))).max() > 1e-3


def test_freq_scale_multiplies_imaginary_parts_of_A():
    u = inputs()
    base, scaled = S4D(d_state=8), S4D(d_state=8, freq_scale=3.0)
    base(u), scaled(u)
    np.testing.assert_allclose(
        to_numpy(scaled.A_imag), 3.0 * to_numpy(base.A_imag), rtol=1e-6
    )


def test_causal():
    layer = S4D(d_state=8)
    u = inputs(length=20)
    changed = u.copy()
    changed[:, 10:] = -changed[:, 10:] + 1.0
    y1, y2 = to_numpy(layer(u)), to_numpy(layer(changed))
    np.testing.assert_allclose(y1[:, :10], y2[:, :10], atol=1e-5)
    assert np.abs(y1[:, 10:] - y2[:, 10:]).max() > 1e-3


@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_steps_contribute_nothing(bidirectional):
    layer = S4D(d_state=8, bidirectional=bidirectional)
    assert_padding_is_ignored(layer, inputs(batch=1, length=16), valid=11)


def test_gradients_are_finite_and_nonzero():
    layer = S4D(d_state=8, bidirectional=True, trainable_sobolev=True)
    grads = layer_gradients(layer, inputs(length=64))
    assert len(grads) == len(layer.trainable_variables) == 7
    for variable, grad in zip(layer.trainable_variables, grads):
        assert np.all(np.isfinite(grad)), variable.name
        assert np.abs(grad).max() > 0, variable.name


def test_variable_length_model():
    model = keras.Sequential(
        [keras.Input((None, 3)), S4D(d_state=4), keras.layers.Dense(2)]
    )
    for length in (5, 13):
        assert model(inputs(length=length)).shape == (2, length, 2)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_ssm_weights_float32(policy):
    reference = S4D(d_state=8, dtype="float32")
    layer = S4D(d_state=8, dtype=policy)
    assert_mixed_precision_close(reference, layer, policy, inputs(length=32))
    for weight in (layer.log_dt, layer.log_A_real, layer.A_imag):
        assert weight.dtype == "float32"


def test_block_fits_under_global_mixed_policy():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = keras.Sequential(
        [keras.Input((16, 4)), S4DBlock(d_state=8), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    x = inputs(batch=8, length=16, channels=4)
    history = model.fit(x, x[..., :1], epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    s4d = model.layers[0].s4d
    assert s4d.compute_dtype == "bfloat16"
    assert s4d.log_dt.dtype == "float32"
    kernel = s4d.kernel(16)
    assert keras.backend.standardize_dtype(kernel.dtype) == "float32"


def test_config_round_trip():
    layer = S4D(
        d_state=6,
        init="inv",
        discretization="bilinear",
        bidirectional=True,
        freq_scale=2.0,
        sobolev_order=0.5,
        dt_scale=0.5,
        C_regularizer="l2",
        name="s4d_cfg",
    )
    clone = S4D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_keras_save_and_load_round_trip(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((20, 4)),
            S4DBlock(d_state=8, bidirectional=True),
            S4DBlock(d_state=8, norm="batch", prenorm=False, init="legs"),
        ]
    )
    assert_save_load_roundtrip(model, inputs(length=20, channels=4), tmp_path)


@pytest.mark.parametrize("norm", ["layer", "batch", "rms"])
def test_block_step_matches_call(norm):
    block = S4DBlock(d_state=8, norm=norm, prenorm=norm != "rms")
    u = inputs(length=12)
    with pytest.raises(ValueError, match="not built"):
        block.get_initial_state(2)
    expected = to_numpy(block(u))
    np.testing.assert_allclose(
        run_steps(block, u), expected, rtol=1e-4, atol=1e-4
    )


def test_block_trains_with_fit_in_sequential():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 32, 4)).astype("float32")
    y = (x[:, :, 0].mean(axis=1, keepdims=True) > 0).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((None, 4)),
            S4DBlock(d_state=8, dropout=0.1),
            S4DBlock(d_state=8),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=ssm_adamw(1e-2, 0.01), loss="binary_crossentropy")
    history = model.fit(x, y, epochs=12, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]


def test_ssm_optimizer_skips_weight_decay_and_scales_lr():
    layer = S4D(d_state=4)
    layer(inputs())
    optimizer = ssm_adamw(1e-2, weight_decay=0.5, ssm_learning_rate=1e-4)
    variables = [layer.log_dt, layer.C_real]
    before = [to_numpy(v) for v in variables]
    grads = [keras.ops.ones(v.shape) for v in variables]
    optimizer.apply_gradients(zip(grads, variables))
    step = [np.abs(to_numpy(v) - b).max() for v, b in zip(variables, before)]
    # Adam's first step moves each weight by ~lr; log_dt by the SSM lr only,
    # and without decay (a decay of 0.5 * lr * |w| would add ~5e-5).
    np.testing.assert_allclose(step[0], 1e-4, rtol=1e-2)
    assert step[1] > 5e-3


def test_ssm_optimizer_can_decay_ssm_parameters_too():
    layer = S4D(d_state=4)
    layer(inputs())
    optimizer = SSMAdamW(1e-2, weight_decay=0.5, decay_ssm_parameters=True)
    optimizer.build(layer.trainable_variables)
    assert optimizer._use_weight_decay(layer.log_dt)
    variable = layer.log_dt
    before = to_numpy(variable)
    optimizer.apply_gradients([(keras.ops.zeros(variable.shape), variable)])
    # A zero gradient leaves only the decoupled decay: w -= lr * wd * w.
    np.testing.assert_allclose(
        to_numpy(variable), before * (1 - 1e-2 * 0.5), rtol=1e-5
    )
    config = optimizer.get_config()
    assert SSMAdamW.from_config(config).decay_ssm_parameters
    assert not ssm_adamw(1e-2)._use_weight_decay(layer.log_dt)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"d_state": 7}, "d_state"),
        ({"d_state": 0}, "d_state"),
        ({"dt_min": 0.1, "dt_max": 0.01}, "dt_min"),
        ({"dt_min": -1.0}, "dt_min"),
        ({"init": "hippo"}, "init"),
        ({"discretization": "euler"}, "discretization"),
        ({"freq_scale": 0.0}, "freq_scale"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S4D(**kwargs)


def test_bad_input_shapes_raise():
    assert_refuses_bad_shapes(S4D(d_state=4), 3, step_match="inputs_t")


def test_sobolev_filter_with_unknown_length():
    model = keras.Sequential(
        [keras.Input((None, 3)), S4D(d_state=4, sobolev_order=1.0)]
    )
    assert model.predict(inputs(length=9), verbose=0).shape == (2, 9, 3)
