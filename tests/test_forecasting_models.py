"""Forecasting models and metrics: shapes, reference formulas, Lipschitz
signs, save/load, a few training steps per model."""

import keras
import numpy as np
import pytest

import keras_ssm.layers as ssm_layers
from applications.forecasting.experiment import ForecastConfig
from applications.forecasting.experiment import build_forecaster
from applications.forecasting.metrics import evaluate_forecaster
from applications.forecasting.metrics import mae
from applications.forecasting.metrics import mse
from keras_ssm.models import HorizonHead
from keras_ssm.models import WindowNormalization
from tests.helpers import assert_save_load_roundtrip
from tests.helpers import to_numpy

SMALL = dict(input_size=12, horizon=5, hidden_dim=8, num_layers=1)


def small_model(name, input_features=1, target_columns=(0,), **kwargs):
    """The forecasting CLI's model for `name`, small."""
    import types

    config = ForecastConfig(model=name, **dict(SMALL, d_state=4, **kwargs))
    data = types.SimpleNamespace(
        input_features=input_features, target_columns=list(target_columns)
    )
    return build_forecaster(config, data)


def available(name):
    """Skips the models whose block another module has not shipped yet."""
    block = {
        "etsmlp": "ETSMLPBlock",
        "etsmlp_gate": "ETSMLPGate",
        "mamba": "MambaBlock",
    }.get(name)
    if block and not hasattr(ssm_layers, block):
        pytest.skip(f"keras_ssm.layers.{block} is not available")
    return name


MODELS = ["s4d", "etsmlp", "etsmlp_gate", "mamba", "transformer", "informer"]


def test_metrics_match_numpy_loops():
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=(4, 3, 2))
    y_pred = rng.normal(size=(4, 3, 2))
    squared = absolute = 0.0
    for value_true, value_pred in zip(y_true.ravel(), y_pred.ravel()):
        squared += (value_pred - value_true) ** 2
        absolute += abs(value_pred - value_true)
    assert mse(y_true, y_pred) == pytest.approx(squared / 24, rel=1e-12)
    assert mae(y_true, y_pred) == pytest.approx(absolute / 24, rel=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        mse(y_true, y_pred[:, :2])


def test_evaluate_forecaster_matches_numpy_on_all_windows():
    from keras_ssm.datasets.ett import ForecastWindows

    values = np.random.default_rng(1).normal(size=(60, 1)).astype("float32")
    windows = ForecastWindows(values, values, input_size=12, h=5, batch_size=7)
    model = small_model("s4d")
    model.compile(run_eagerly=True)  # no compile step in a unit test
    scores = evaluate_forecaster(model, windows, batch_size=16)
    inputs, targets = windows.arrays()
    forecasts = to_numpy(model(inputs))
    assert inputs.shape[0] == 60 - 12 - 5 + 1
    assert scores["mse"] == pytest.approx(
        np.mean((forecasts - targets) ** 2), rel=1e-5
    )
    assert scores["mae"] == pytest.approx(
        np.mean(np.abs(forecasts - targets)), rel=1e-5
    )


def test_horizon_head_matches_numpy():
    head = HorizonHead(h=4, num_targets=2)
    x = np.random.default_rng(2).normal(size=(3, 6, 5)).astype("float32")
    y = to_numpy(head(x))
    time_kernel, time_bias = (to_numpy(w) for w in head.time_projection.weights)
    channel_kernel, channel_bias = (
        to_numpy(w) for w in head.channel_projection.weights
    )
    over_time = np.einsum("blc,lt->btc", x, time_kernel) + time_bias[:, None]
    expected = over_time @ channel_kernel + channel_bias
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    assert head.compute_output_shape((3, 6, 5)) == (3, 4, 2)


@pytest.mark.parametrize("mode", ["last", "revin"])
def test_window_normalization_matches_numpy(mode):
    x = np.random.default_rng(3).normal(size=(2, 7, 3)).astype("float32")
    z, shift, scale = (to_numpy(t) for t in WindowNormalization(mode)(x))
    if mode == "last":
        expected_shift, expected_scale = x[:, -1:], np.ones((2, 1, 3))
    else:
        expected_shift = x.mean(1, keepdims=True)
        expected_scale = np.sqrt(x.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(shift, expected_shift, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scale, expected_scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        z, (x - expected_shift) / expected_scale, rtol=1e-4, atol=1e-5
    )
    with pytest.raises(ValueError, match="normalization"):
        WindowNormalization("minmax")


def test_last_value_forecaster_is_shift_equivariant():
    """With "last" normalisation, adding c to the history adds c to the
    forecast: the level is carried by the window, not learned."""
    model = small_model("s4d", input_features=2, target_columns=(1,))
    x = np.random.default_rng(4).normal(size=(2, 12, 2)).astype("float32")
    shifted = x + np.array([3.0, -2.0], dtype="float32")
    np.testing.assert_allclose(
        to_numpy(model(shifted)), to_numpy(model(x)) - 2.0, atol=1e-4
    )


@pytest.mark.parametrize("name", MODELS)
def test_each_model_trains_a_few_steps(name):
    available(name)
    model = small_model(name, input_features=3, target_columns=(2,))
    x = np.random.default_rng(5).normal(size=(16, 12, 3)).astype("float32")
    y = np.cumsum(x[:, -5:, 2:], axis=1)  # learnable from the inputs
    assert model(x[:2]).shape == (2, 5, 1)
    # Whichever way is quicker to set up for three steps: TensorFlow's
    # graph tracing costs more than running eagerly, JAX's per-op
    # compilation more than one jitted step.
    eager = keras.backend.backend() == "tensorflow"
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="mse", run_eagerly=eager
    )
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(
    "name, sign", [("s4d", 1.0), ("transformer", -1.0), ("informer", -1.0)]
)
def test_lipschitz_weight_sign_is_poster_convention(name, sign):
    config = ForecastConfig(model=name, lipschitz=0.05)
    assert config.lipschitz_weight == pytest.approx(sign * 0.05)
    model = small_model(name, lipschitz=0.05)
    layers = [
        layer
        for layer in model.layers + getattr(model, "backbone", model).layers
        if isinstance(layer, ssm_layers.LipschitzRegularization)
    ]
    assert layers and all(
        layer.weight == pytest.approx(sign * 0.05) for layer in layers
    )
    x = np.random.default_rng(6).normal(size=(2, 12, 1)).astype("float32")
    model(x)
    penalty = sum(float(to_numpy(loss)) for loss in model.losses)
    assert np.sign(penalty) == sign


def test_forecaster_save_load_round_trip(tmp_path):
    model = small_model("s4d", lipschitz=0.01)
    x = np.random.default_rng(7).normal(size=(2, 12, 1)).astype("float32")
    assert_save_load_roundtrip(model, x, tmp_path)


def test_unknown_model_and_negative_lambda_are_clear_errors(capsys):
    from applications.forecasting.cli import make_parser

    with pytest.raises(ValueError, match="block_type"):
        small_model("lstm")
    with pytest.raises(SystemExit):
        make_parser().parse_args(["--lipschitz", "-0.1"])
    assert "--lipschitz: must be >= 0" in capsys.readouterr().err


def test_persistence_scores_repeat_the_last_input_value():
    from applications.forecasting.metrics import persistence_scores
    from keras_ssm.datasets.ett import ForecastWindows

    values = np.random.default_rng(8).normal(size=(30, 2)).astype("float32")
    windows = ForecastWindows(values, values[:, 1:], input_size=6, h=4)
    scores = persistence_scores(windows, target_columns=[1])
    errors = [
        values[i + 6 : i + 10, 1] - values[i + 5, 1]
        for i in range(30 - 6 - 4 + 1)
    ]
    assert scores["mse"] == pytest.approx(np.mean(np.square(errors)))
    assert scores["mae"] == pytest.approx(np.mean(np.abs(errors)))
