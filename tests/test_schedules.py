"""Warm-up schedules: values against their formulas, serialization, and the
SSM learning rate of `SSMAdamW` under a warm-up."""

import keras
import numpy as np
import pytest

from keras_ssm.layers import S4D
from keras_ssm.optimizers import ssm_adamw
from keras_ssm.schedules import LinearDecayWithWarmup
from keras_ssm.schedules import peak_learning_rate
from keras_ssm.schedules import warmup_schedule
from tests.helpers import to_numpy

STEPS = np.array([0, 1, 5, 10, 11, 50, 99, 100, 101, 500])


def rates(schedule):
    return np.array([float(to_numpy(schedule(s))) for s in STEPS])


def test_linear_decay_with_warmup_follows_its_formula():
    peak, warmup, decay, end = 0.01, 10, 90, 1e-4
    schedule = LinearDecayWithWarmup(peak, warmup, decay, end)
    expected = np.where(
        STEPS < warmup,
        peak * STEPS / warmup,
        end + (peak - end) * (1 - np.clip((STEPS - warmup) / decay, 0, 1)),
    )
    np.testing.assert_allclose(rates(schedule), expected, rtol=1e-5)
    assert rates(schedule).max() == pytest.approx(peak)


def test_cosine_warmup_rises_linearly_then_follows_the_cosine():
    peak, total, warmup, alpha = 0.01, 100, 10, 0.01
    schedule = warmup_schedule(peak, total, warmup, "cosine", alpha=alpha)
    progress = np.clip((STEPS - warmup) / (total - warmup), 0, 1)
    cosine = peak * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * progress)) + alpha)
    expected = np.where(STEPS < warmup, peak * STEPS / warmup, cosine)
    np.testing.assert_allclose(rates(schedule), expected, rtol=1e-4)


def test_warmup_schedule_kinds_and_peaks():
    linear = warmup_schedule(0.02, 100, 5, "linear")
    assert isinstance(linear, LinearDecayWithWarmup)
    assert float(to_numpy(linear(100))) == pytest.approx(0.0, abs=1e-9)
    no_warmup = warmup_schedule(0.02, 100, 0, "cosine")
    assert float(to_numpy(no_warmup(0))) == pytest.approx(0.02)
    assert warmup_schedule(0.02, 100, 0, "constant") == 0.02
    for schedule in (linear, no_warmup, warmup_schedule(0.02, 100, 5)):
        assert peak_learning_rate(schedule) == pytest.approx(0.02)
    assert peak_learning_rate(3e-3) == 3e-3


def test_warmups_start_from_the_initial_rate():
    peak, start, total, warmup = 0.01, 1e-7, 100, 10
    expected_rise = start + (peak - start) * STEPS / warmup
    linear = warmup_schedule(
        peak, total, warmup, "linear", initial_learning_rate=start
    )
    cosine = warmup_schedule(
        peak, total, warmup, "cosine", initial_learning_rate=start
    )
    rising = STEPS < warmup
    for schedule in (linear, cosine):
        values = rates(schedule)
        np.testing.assert_allclose(
            values[rising], expected_rise[rising], rtol=1e-5
        )
        assert values[0] == pytest.approx(start, rel=1e-5)
        assert peak_learning_rate(schedule) == pytest.approx(peak)
    # The linear decay after the warm-up does not depend on the start.
    np.testing.assert_allclose(
        rates(linear)[~rising],
        rates(warmup_schedule(peak, total, warmup, "linear"))[~rising],
    )
    config = keras.saving.serialize_keras_object(linear)
    restored = keras.saving.deserialize_keras_object(config)
    assert restored.initial_learning_rate == start
    np.testing.assert_allclose(rates(restored), rates(linear))
    # Configs saved before the argument existed still load (start at 0).
    old = dict(linear.get_config())
    old.pop("initial_learning_rate")
    assert float(to_numpy(LinearDecayWithWarmup(**old)(0))) == 0.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: warmup_schedule(0.01, 100, 0, "step"), "`kind`"),
        (lambda: warmup_schedule(0.01, 100, 100), "`warmup_steps`"),
        (lambda: warmup_schedule(0.01, 100, -1), "`warmup_steps`"),
        (lambda: LinearDecayWithWarmup(0.01, 5, 0), "`decay_steps`"),
        (lambda: LinearDecayWithWarmup(0.01, -5, 10), "`warmup_steps`"),
        (
            lambda: LinearDecayWithWarmup(0.01, 5, 10, 0.0, 0.1),
            "`initial_learning_rate`",
        ),
        (
            lambda: warmup_schedule(0.01, 100, 5, initial_learning_rate=-1),
            "`initial_learning_rate`",
        ),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_schedule_serializes_inside_an_optimizer():
    schedule = LinearDecayWithWarmup(0.01, 10, 90, 1e-4)
    config = keras.saving.serialize_keras_object(schedule)
    assert config["registered_name"] == "keras_ssm>LinearDecayWithWarmup"
    restored = keras.saving.deserialize_keras_object(config)
    np.testing.assert_allclose(rates(restored), rates(schedule))
    optimizer = ssm_adamw(schedule, weight_decay=0.01, ssm_learning_rate=1e-3)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    np.testing.assert_allclose(rates(again._learning_rate), rates(schedule))
    assert again.ssm_learning_rate == 1e-3


def test_ssm_learning_rate_is_scaled_against_the_peak_after_warmup():
    # At step 0 a warm-up's rate is 0; the SSM rate must still be the given
    # fraction of the schedule, not a division by zero.
    layer = S4D(d_state=4)
    layer(np.zeros((1, 8, 2), "float32"))
    schedule = warmup_schedule(1e-2, total_steps=1000, warmup_steps=2)
    optimizer = ssm_adamw(schedule, weight_decay=0.0, ssm_learning_rate=1e-4)
    variables = [layer.log_dt, layer.C_real]
    grads = [keras.ops.ones(v.shape) for v in variables]
    optimizer.apply_gradients(zip(grads, variables))  # step 0: lr 0
    before = [to_numpy(v) for v in variables]
    optimizer.apply_gradients(zip(grads, variables))  # step 1: lr peak / 2
    moved = [np.abs(to_numpy(v) - b).max() for v, b in zip(variables, before)]
    # Adam moves each weight by ~lr per step with a constant gradient.
    np.testing.assert_allclose(moved[0], 0.5e-4, rtol=2e-2)
    np.testing.assert_allclose(moved[1], 0.5e-2, rtol=2e-2)


def test_ssm_learning_rate_needs_a_positive_peak():
    with pytest.raises(ValueError, match="`learning_rate`"):
        ssm_adamw(0.0, ssm_learning_rate=1e-3)
