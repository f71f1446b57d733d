"""`applications.common.time_budget`: a schedule spread over wall-clock time."""

import math

import keras
import numpy as np
import pytest

from applications.common import time_budget
from applications.common.errors import UsageError

TRAINING = {
    "learning_rate": 0.006,
    "weight_decay": 0.01,
    "final_lr_fraction": 0.01,
    "schedule": "cosine",
    "epochs": 4,
    "batch_size": 8,
}


class FakeClock:
    """`time.perf_counter` that moves `tick` seconds per call."""

    def __init__(self, tick):
        self.now, self.tick = 0.0, tick

    def __call__(self):
        self.now += self.tick
        return self.now


def _cosine(fraction, peak=0.006, alpha=0.01):
    return peak * (
        alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * fraction))
    )


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_rate_follows_the_cosine_over_the_budget(fraction, monkeypatch):
    budget = time_budget.WallClockBudget(100.0, TRAINING)
    monkeypatch.setattr(budget, "elapsed", lambda: 100.0 * fraction)
    assert budget.learning_rate() == pytest.approx(_cosine(fraction), rel=1e-5)


def test_linear_schedule_and_warmup_fraction_are_placed_in_time(monkeypatch):
    training = dict(
        TRAINING, schedule="linear", warmup_fraction=0.1, final_lr_fraction=0
    )
    budget = time_budget.WallClockBudget(50.0, training)
    for fraction, expected in ((0.05, 0.003), (0.1, 0.006), (0.55, 0.003)):
        monkeypatch.setattr(budget, "elapsed", lambda f=fraction: 50.0 * f)
        assert budget.learning_rate() == pytest.approx(expected, rel=1e-4)


def test_compile_settings_hold_a_constant_rate_for_the_callback():
    settings = time_budget.budget_compile_settings(
        dict(TRAINING, warmup_fraction=0.1)
    )
    assert settings["schedule"] == "constant"
    assert "warmup_fraction" not in settings
    assert settings["learning_rate"] == TRAINING["learning_rate"]
    with pytest.raises(UsageError, match="warmup_fraction"):
        time_budget.budget_compile_settings(dict(TRAINING, warmup_steps=100))


def test_budget_resolution():
    preset = dict(TRAINING, time_budget_seconds=300)
    assert time_budget.resolve_budget(None, None, preset) == 300
    assert time_budget.resolve_budget(None, 2, preset) is None  # epochs
    assert time_budget.resolve_budget(60.0, 2, preset) == 60.0  # both: cap
    assert time_budget.resolve_budget(0.0, None, preset) is None  # off
    assert time_budget.resolve_budget(None, None, TRAINING) is None
    with pytest.raises(UsageError, match="--time-budget.*single process"):
        time_budget.resolve_budget(None, None, preset, process_count=2)
    assert time_budget.resolve_budget(None, 1, preset, process_count=2) is None


@pytest.mark.parametrize("seconds, elapsed", [(0, 0.0), (-1, 0.0), (5, -1.0)])
def test_bad_budgets_are_refused(seconds, elapsed):
    with pytest.raises(ValueError, match="`seconds`|`elapsed`"):
        time_budget.WallClockBudget(seconds, TRAINING, elapsed=elapsed)


def _model():
    from keras_ssm.models import SSMBackbone
    from keras_ssm.models import SSMClassifier

    backbone = SSMBackbone(
        vocabulary_size=5,
        hidden_dim=8,
        num_layers=1,
        block_type="s4d",
        d_state=4,
        sequence_length=6,
    )
    return SSMClassifier(backbone, num_classes=3)


def test_fit_stops_at_the_budget_and_the_set_rate_is_the_one_trained_with(
    monkeypatch,
):
    # One second per clock reading: the 60 s budget runs out within the
    # first epoch, after more than one mid-epoch rate update.
    monkeypatch.setattr(time_budget.time, "perf_counter", FakeClock(1.0))
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 5, size=(400, 6))
    y = rng.integers(0, 3, size=(400,))
    model = _model()
    model.compile_from_preset(time_budget.budget_compile_settings(TRAINING))
    budget = time_budget.WallClockBudget(60.0, TRAINING)
    history = model.fit(
        x, y, batch_size=4, epochs=3, callbacks=[budget], verbose=0
    )
    batches = budget._batches
    assert budget.exhausted and len(history.history["loss"]) == 1
    assert time_budget.UPDATE_EVERY < batches < 100  # stopped mid-epoch
    # The rate after fit is the last one the callback set mid-epoch: under
    # JAX it went through the trainer's state rather than being overwritten
    # by it at the end of the epoch.
    rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert rate < 0.5 * TRAINING["learning_rate"]
    assert history.history["learning_rate"][-1] == pytest.approx(
        TRAINING["learning_rate"] * TRAINING["final_lr_fraction"], rel=1e-4
    )
    for weight in model.trainable_weights:
        assert np.isfinite(keras.ops.convert_to_numpy(weight)).all()


def test_a_resumed_run_that_spent_its_budget_trains_no_further():
    model = _model()
    model.compile_from_preset(time_budget.budget_compile_settings(TRAINING))
    x = np.ones((8, 6), "int32")
    model.predict(x, verbose=0)
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    budget = time_budget.WallClockBudget(10.0, TRAINING, elapsed=10.0)
    model.fit(x, np.zeros(8), epochs=2, callbacks=[budget], verbose=0)
    assert budget.exhausted
    # Keras runs the batch that was already under way, at the final rate.
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    for b, a in zip(before, after):
        np.testing.assert_allclose(a, b, atol=1e-3)
