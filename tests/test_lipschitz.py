"""Lipschitz regularizer, regularization layer and schedule (issue 5)."""

import keras
import numpy as np
import pytest

from keras_ssm.callbacks import LipschitzSchedule
from keras_ssm.layers import LipschitzRegularization
from keras_ssm.layers.lipschitz import penalize_outputs
from keras_ssm.regularizers import LipschitzRegularizer
from keras_ssm.regularizers import lipschitz_penalty
from tests.helpers import to_numpy


def numpy_penalty(x, mask=None, normalize=False):
    """L_Lip in float64: mean of squared first differences."""
    x = np.asarray(x, np.float64)
    if normalize:
        valid = x if mask is None else x[np.asarray(mask, bool)]
        x = (x - valid.min()) / (valid.max() - valid.min())
    squared = np.mean(np.diff(x, axis=1) ** 2, axis=-1)
    if mask is None:
        return squared.mean()
    pairs = np.logical_and(mask[:, 1:], mask[:, :-1])
    return squared[pairs].mean()


class BatchLosses(keras.callbacks.Callback):
    """Per-batch losses recovered from the running means of `fit`'s logs."""

    def __init__(self):
        super().__init__()
        self.means = []
        self.weights = []

    def on_epoch_begin(self, epoch, logs=None):
        self.means.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.means[-1].append(float(logs["loss"]))
        self.weights.append(logs.get("lipschitz_weight"))

    def losses(self):
        out = []
        for means in self.means:
            totals = np.arange(1, len(means) + 1) * np.asarray(means)
            out.extend(np.diff(totals, prepend=0.0))
        return np.asarray(out)


def fit_recording(model, x, y, schedule, epochs):
    """Fits in unshuffled batches of 4 under `schedule`; returns the
    `BatchLosses` record."""
    recorder = BatchLosses()
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[schedule, recorder],
    )
    return recorder


def zero_head_model(layers, input_shape, input_dtype="float32"):
    """Layers followed by a zero Dense(1): predictions are exactly 0."""
    return keras.Sequential(
        [keras.Input(input_shape, dtype=input_dtype)]
        + layers
        + [
            keras.layers.Dense(
                1, kernel_initializer="zeros", bias_initializer="zeros"
            )
        ]
    )


def compile_frozen(model):
    # lr 0: the weights (and hence the task loss) stay fixed over the steps.
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")


# -- the penalty ---------------------------------------------------------


def test_penalty_matches_numpy():
    x = np.random.normal(size=(3, 7, 4)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(lipschitz_penalty(x)), numpy_penalty(x), rtol=1e-5
    )
    np.testing.assert_allclose(
        to_numpy(lipschitz_penalty(x, normalize=True)),
        numpy_penalty(x, normalize=True),
        rtol=1e-5,
    )
    mask = np.ones((3, 7), bool)
    mask[0, 4:] = False
    mask[2, 2:] = False
    np.testing.assert_allclose(
        to_numpy(lipschitz_penalty(x, mask=mask)),
        numpy_penalty(x, mask=mask),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        to_numpy(lipschitz_penalty(x, mask=mask, normalize=True)),
        numpy_penalty(x, mask=mask, normalize=True),
        rtol=1e-5,
    )


def test_penalty_is_float32_under_half_precision():
    x = np.random.normal(size=(2, 9, 3)).astype("float32")
    value = lipschitz_penalty(keras.ops.cast(x, "bfloat16"))
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    x16 = to_numpy(keras.ops.cast(x, "bfloat16"))
    np.testing.assert_allclose(to_numpy(value), numpy_penalty(x16), rtol=1e-5)


def test_smooth_sequence_has_smaller_penalty():
    t = np.linspace(0, 1, 64, dtype="float32")
    smooth = np.sin(2 * np.pi * t)[None, :, None]
    rough = np.sign(np.sin(2 * np.pi * 16 * t))[None, :, None]
    assert to_numpy(lipschitz_penalty(smooth)) < 0.01 * to_numpy(
        lipschitz_penalty(rough)
    )


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="batch, length, channels"):
        lipschitz_penalty(np.zeros((4, 5), "float32"))
    with pytest.raises(ValueError, match="at least 2 time steps"):
        lipschitz_penalty(np.zeros((4, 1, 3), "float32"))
    with pytest.raises(ValueError, match="`weight`"):
        LipschitzRegularizer("big")
    with pytest.raises(ValueError, match="`weight`"):
        LipschitzRegularization(weight=None)
    with pytest.raises(ValueError, match="batch, length, channels"):
        LipschitzRegularization()(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="`decay`"):
        LipschitzSchedule(0.1, decay=-1.0)
    with pytest.raises(ValueError, match="`unit`"):
        LipschitzSchedule(0.1, unit="step")


# -- the layer ---------------------------------------------------------


def test_layer_is_identity_and_adds_weighted_penalty():
    x = np.random.normal(size=(2, 6, 3)).astype("float32")
    layer = LipschitzRegularization(weight=-0.7)
    np.testing.assert_array_equal(to_numpy(layer(x)), x)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(
        to_numpy(layer.losses[0]), -0.7 * numpy_penalty(x), rtol=1e-5
    )
    assert layer.penalty_weight.trainable is False
    assert layer.trainable_weights == []


def test_layer_respects_embedding_mask():
    tokens = np.array([[3, 1, 4, 1, 5, 0, 0], [2, 7, 1, 8, 2, 8, 1]])
    embed = keras.layers.Embedding(10, 4, mask_zero=True)
    layer = LipschitzRegularization(weight=1.0)
    mask = tokens != 0
    layer(embed(tokens), mask=mask)
    assert layer.compute_mask(None, mask) is mask
    table = to_numpy(embed.embeddings)
    expected = numpy_penalty(table[tokens], mask=mask)
    np.testing.assert_allclose(to_numpy(layer.losses[0]), expected, rtol=1e-5)


def test_mixed_precision_keeps_weight_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = LipschitzRegularization(weight=0.5)
    x = keras.ops.cast(np.random.normal(size=(2, 8, 3)), "bfloat16")
    y = layer(x)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert layer.penalty_weight.dtype == "float32"
    loss = layer.losses[0]
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    np.testing.assert_allclose(
        to_numpy(loss), 0.5 * numpy_penalty(to_numpy(x)), rtol=1e-5
    )


@pytest.mark.parametrize("weight", [0.3, -0.3])
def test_fit_loss_includes_exact_layer_penalty(weight):
    x = np.random.normal(size=(12, 10, 3)).astype("float32")
    y = np.random.normal(size=(12, 10, 1)).astype("float32")
    model = zero_head_model([LipschitzRegularization(weight)], (10, 3))
    compile_frozen(model)
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    expected = np.mean(
        [
            np.mean(y[i : i + 4] ** 2) + weight * numpy_penalty(x[i : i + 4])
            for i in (0, 4, 8)
        ]
    )
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-5)


def test_fit_loss_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    x = np.random.normal(size=(8, 10, 3)).astype("float32")
    y = np.random.normal(size=(8, 10, 1)).astype("float32")
    model = zero_head_model([LipschitzRegularization(0.5)], (10, 3))
    compile_frozen(model)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    x16 = to_numpy(keras.ops.cast(x, "bfloat16"))  # the layer's inputs
    expected = np.mean(y**2) + 0.5 * numpy_penalty(x16)
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-4)


@pytest.mark.parametrize("weight", [0.25, -0.25])
def test_fit_loss_includes_exact_activity_penalty(weight):
    tokens = np.random.randint(0, 20, size=(8, 12))
    y = np.random.normal(size=(8, 12, 1)).astype("float32")
    embed = keras.layers.Embedding(
        20, 5, activity_regularizer=LipschitzRegularizer(weight)
    )
    model = zero_head_model([embed], (12,), input_dtype="int32")
    compile_frozen(model)
    history = model.fit(
        tokens, y, batch_size=4, epochs=1, shuffle=False, verbose=0
    )
    table = to_numpy(embed.embeddings)
    expected = np.mean(
        [
            np.mean(y[i : i + 4] ** 2)
            + weight * numpy_penalty(table[tokens[i : i + 4]])
            for i in (0, 4)
        ]
    )
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-5)


def test_regularizer_config_roundtrip():
    reg = LipschitzRegularizer(-0.2, normalize=True)
    restored = keras.regularizers.deserialize(keras.regularizers.serialize(reg))
    assert isinstance(restored, LipschitzRegularizer)
    assert restored.weight == -0.2 and restored.normalize is True


# -- the schedule ---------------------------------------------------------


def test_schedule_changes_loss_step_by_step():
    batch = np.random.normal(size=(4, 10, 3)).astype("float32")
    target = np.random.normal(size=(4, 10, 1)).astype("float32")
    x, y = np.concatenate([batch] * 4), np.concatenate([target] * 4)
    model = zero_head_model([LipschitzRegularization(9.0)], (10, 3))
    compile_frozen(model)
    schedule = LipschitzSchedule(-2.0, decay=0.5, unit="batch")
    recorder = fit_recording(model, x, y, schedule, epochs=2)
    steps = np.arange(8)
    weights = -2.0 * np.exp(-0.5 * steps)
    expected = np.mean(target**2) + weights * numpy_penalty(batch)
    np.testing.assert_allclose(recorder.losses(), expected, rtol=2e-5)
    np.testing.assert_allclose(recorder.weights, weights, rtol=1e-12)
    layer = model.layers[0]
    np.testing.assert_allclose(layer.weight, weights[-1], rtol=1e-6)


def test_schedule_per_epoch_logs_weight():
    x = np.random.normal(size=(8, 10, 3)).astype("float32")
    y = np.random.normal(size=(8, 10, 1)).astype("float32")
    model = zero_head_model([LipschitzRegularization(0.0, name="lip")], (10, 3))
    compile_frozen(model)
    schedule = LipschitzSchedule(
        1.5, decay=1.0, unit="epoch", layer_names=["lip"]
    )
    history = model.fit(
        x, y, batch_size=8, epochs=3, verbose=0, callbacks=[schedule]
    )
    weights = 1.5 * np.exp(-np.arange(3.0))
    np.testing.assert_allclose(history.history["lipschitz_weight"], weights)
    expected = np.mean(y**2) + weights * numpy_penalty(x)
    np.testing.assert_allclose(history.history["loss"], expected, rtol=2e-5)


def test_schedule_without_layer_raises():
    model = zero_head_model([], (10, 3))
    compile_frozen(model)
    x = np.zeros((4, 10, 3), "float32")
    with pytest.raises(ValueError, match="LipschitzRegularization"):
        model.fit(x, x[..., :1], verbose=0, callbacks=[LipschitzSchedule(1.0)])


# -- the output penalty with a decaying weight ------------------------


def output_model(seed=0):
    """A fixed random Dense map (10, 3) -> (10, 2): non-trivial y_hat."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((10, 3)), keras.layers.Dense(2)])


@pytest.mark.parametrize("unit", ["epoch", "batch"])
def test_output_penalty_with_decay_matches_numpy(unit):
    # L = MSE(y, y_hat) - lambda exp(-eps t) L_Lip(y_hat), t per `unit`.
    lam, eps = 0.7, 0.4
    batch = np.random.normal(size=(4, 10, 3)).astype("float32")
    target = np.random.normal(size=(4, 10, 2)).astype("float32")
    x, y = np.concatenate([batch] * 2), np.concatenate([target] * 2)
    base = output_model()
    model = penalize_outputs(base, weight=123.0)  # the schedule overrides it
    compile_frozen(model)
    schedule = LipschitzSchedule(-lam, decay=eps, unit=unit)
    recorder = fit_recording(model, x, y, schedule, epochs=3)
    kernel, bias = (np.asarray(to_numpy(w), np.float64) for w in base.weights)
    y_hat = batch.astype(np.float64) @ kernel + bias
    mse = np.mean((target - y_hat) ** 2)
    # Two steps per epoch: t is the epoch index or the step count.
    t = np.repeat(np.arange(3), 2) if unit == "epoch" else np.arange(6)
    expected = mse - lam * np.exp(-eps * t) * numpy_penalty(y_hat)
    np.testing.assert_allclose(recorder.losses(), expected, rtol=2e-5)
    layer = model.get_layer("output_lipschitz")
    np.testing.assert_allclose(layer.weight, -lam * np.exp(-eps * t[-1]))


def test_output_penalty_keeps_outputs_and_weights():
    base = output_model()
    model = penalize_outputs(base, weight=-0.1, name="wrapped")
    x = np.random.normal(size=(2, 10, 3)).astype("float32")
    np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(base(x)))
    assert model.name == "wrapped"
    assert len(model.trainable_weights) == len(base.trainable_weights)
    np.testing.assert_allclose(
        to_numpy(model.losses[0]),
        -0.1 * numpy_penalty(to_numpy(base(x))),
        rtol=1e-5,
    )


def test_output_penalty_model_keras_roundtrip(tmp_path):
    model = penalize_outputs(output_model(), weight=-0.1)
    model.get_layer("output_lipschitz").assign_weight(-0.03)
    path = str(tmp_path / "output_penalty.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    x = np.random.normal(size=(2, 10, 3)).astype("float32")
    np.testing.assert_array_equal(to_numpy(restored(x)), to_numpy(model(x)))
    layer = restored.get_layer("output_lipschitz")
    np.testing.assert_allclose(layer.weight, -0.03, rtol=1e-6)
    np.testing.assert_allclose(
        to_numpy(restored.losses[0]), to_numpy(model.losses[0]), rtol=1e-6
    )


def test_output_penalty_bad_models_raise():
    with pytest.raises(ValueError, match="keras.Model"):
        penalize_outputs("not a model")
    flat = keras.Sequential([keras.Input((10,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="batch, length, channels"):
        penalize_outputs(flat)
    a, b = keras.Input((4, 1)), keras.Input((4, 1))
    two = keras.Model([a, b], keras.layers.Add()([a, b]))
    with pytest.raises(ValueError, match="one input"):
        penalize_outputs(two)


# -- saving ---------------------------------------------------------


def test_current_weight_survives_save_load(tmp_path):
    x = np.random.normal(size=(2, 6, 3)).astype("float32")
    model = keras.Sequential(
        [keras.Input((6, 3)), LipschitzRegularization(0.2, normalize=True)]
    )
    model.layers[0].assign_weight(0.37)
    path = str(tmp_path / "lipschitz.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    layer = restored.layers[0]
    assert isinstance(layer, LipschitzRegularization)
    assert layer.normalize is True
    np.testing.assert_allclose(layer.weight, 0.37, rtol=1e-6)
    np.testing.assert_array_equal(to_numpy(restored(x)), x)
    np.testing.assert_allclose(
        to_numpy(restored.losses[0]),
        0.37 * numpy_penalty(x, normalize=True),
        rtol=1e-5,
    )
