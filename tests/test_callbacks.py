"""The task models stop at a non-finite loss and keep their weights."""

import keras
import numpy as np
import pytest

from keras_ssm.callbacks import TerminateOnNonFiniteLoss
from keras_ssm.callbacks import default_callbacks
from keras_ssm.models import SSMBackbone
from keras_ssm.models import SSMClassifier


def _classifier():
    backbone = SSMBackbone(
        "s4d", num_layers=1, hidden_dim=8, input_features=3, d_state=4
    )
    model = SSMClassifier(backbone, num_classes=3)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_a_nan_input_stops_fit_and_keeps_the_last_good_weights():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 3)).astype("float32")
    y = rng.integers(0, 3, size=(16,))
    model = _classifier()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)  # one good epoch
    good = [np.array(w) for w in model.get_weights()]
    poisoned = x.copy()
    poisoned[9, 2, 1] = np.nan  # in the third batch of the next epoch
    with pytest.warns(RuntimeWarning, match="epoch 1, batch 3"):
        history = model.fit(
            poisoned, y, epochs=3, batch_size=4, shuffle=False, verbose=0
        )
    assert len(history.history["loss"]) == 1  # stopped in the first epoch
    for got, want in zip(model.get_weights(), good):
        assert np.all(np.isfinite(got))
        np.testing.assert_array_equal(got, want)
    # And it trains on from there.
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_default_callbacks_add_one_stopper():
    added = default_callbacks(None)
    assert [type(c) for c in added] == [TerminateOnNonFiniteLoss]
    own = keras.callbacks.TerminateOnNaN()
    assert default_callbacks([own]) == [own]
    stopper = TerminateOnNonFiniteLoss(restore=False)
    assert default_callbacks([stopper]) == [stopper]
