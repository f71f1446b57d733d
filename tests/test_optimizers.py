"""SSMAdamW finds the SSM parameters by the mark on the variable.

The marks are read when the optimizer builds on its variables, so the
optimizer may be created before the model is built (and a model without
`keras.Input` is only built inside `fit`); a user's weight that shares a
name with an SSM weight is an ordinary weight.
"""

import keras
import numpy as np

from keras_ssm.layers import S4DBlock
from keras_ssm.layers import SelectiveSSM
from keras_ssm.layers.base import SequenceLayer
from keras_ssm.layers.base import is_ssm_parameter
from keras_ssm.optimizers import SSMAdamW
from keras_ssm.optimizers import ssm_adamw
from tests.helpers import to_numpy

LR = 1e-2
DECAY = 0.5


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 12, 3)).astype("float32")
    y = rng.normal(size=(4, 12, 4)).astype("float32")
    return x, y


def _fit_one_step(model, optimizer):
    x, y = _data()
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    # A list, not keyed by path: each new model gets new layer names.
    return [to_numpy(v) for v in model.trainable_variables]


def _s4d_sequential():
    # No keras.Input: the layers are built inside `fit`, after `compile`.
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [S4DBlock(d_state=8), keras.layers.Dense(4, name="head")]
    )


def test_unbuilt_sequential_keeps_ssm_parameters_out_of_weight_decay():
    # The decayed run first: nothing is built when its optimizer is made.
    decayed_model = _s4d_sequential()
    decayed = _fit_one_step(decayed_model, ssm_adamw(LR, DECAY))
    plain = _fit_one_step(_s4d_sequential(), ssm_adamw(LR, 0.0))
    # One step from the same weights with the same gradients: the two runs
    # differ by the decoupled decay alone.
    variables = decayed_model.trainable_variables
    names = [v.path.split("/")[-1] for v in variables if is_ssm_parameter(v)]
    assert "log_dt" in names and "A_imag" in names
    for i, variable in enumerate(variables):
        if is_ssm_parameter(variable):
            np.testing.assert_array_equal(decayed[i], plain[i])
        elif variable.path.endswith("head/kernel"):
            np.testing.assert_allclose(
                decayed[i] - plain[i], -LR * DECAY * decayed[i], atol=1e-3
            )
            assert np.max(np.abs(decayed[i] - plain[i])) > 1e-4


class _PoleLayer(SequenceLayer):
    """A user layer: one SSM weight under a new name, one plain `A_log`."""

    def build(self, input_shape):
        channels = self._validate_input_shape(input_shape)
        self.user_pole = self.add_ssm_weight(
            "user_pole_never_seen_before",
            (channels,),
            keras.initializers.Constant(0.7),
        )
        self.A_log = self.add_weight(
            name="A_log",
            shape=(channels,),
            initializer=keras.initializers.Constant(0.9),
        )

    def call(self, inputs):
        return inputs * self.user_pole + inputs * self.A_log


def test_optimizer_created_before_the_model_resolves_marks_at_build():
    optimizer = ssm_adamw(LR, DECAY)  # before any layer below exists
    keras.utils.set_random_seed(1)
    # A SelectiveSSM has its own (marked) `A_log`; the user's is plain.
    selective = SelectiveSSM(d_state=4, dt_rank=2)
    user = _PoleLayer()
    model = keras.Sequential([keras.Input((12, 3)), selective, user])
    model.compile(optimizer=optimizer, loss="mse")
    x, _ = _data()
    grads = [keras.ops.zeros(v.shape) for v in model.trainable_variables]
    before = {v.path: to_numpy(v) for v in model.trainable_variables}
    # A zero gradient leaves only the decoupled decay: w -= lr * wd * w.
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    after = {v.path: to_numpy(v) for v in model.trainable_variables}
    assert not np.allclose(after[user.A_log.path], before[user.A_log.path])
    np.testing.assert_allclose(
        after[user.A_log.path], before[user.A_log.path] * (1 - LR * DECAY)
    )
    for variable in (user.user_pole, selective.A_log, selective.dt_bias):
        np.testing.assert_array_equal(
            after[variable.path], before[variable.path]
        )
    assert model(x).shape == (4, 12, 3)


def test_ssm_learning_rate_applies_to_marked_variables_inside_fit():
    optimizer = SSMAdamW(LR, weight_decay=DECAY, ssm_learning_rate=0.0)
    initial = _s4d_sequential()
    initial.build((None, 12, 3))
    start = [to_numpy(v) for v in initial.trainable_variables]
    model = _s4d_sequential()
    weights = _fit_one_step(model, optimizer)
    assert len(weights) == len(start)
    for i, variable in enumerate(model.trainable_variables):
        moved = np.abs(weights[i] - start[i]).max()
        # SSM lr 0 and no decay: the step leaves them where they were.
        assert (moved == 0) == is_ssm_parameter(variable), variable.path


def test_marks_are_on_the_variables_of_every_layer_and_survive_reload(
    tmp_path,
):
    model = keras.Sequential([keras.Input((12, 3)), S4DBlock(d_state=4)])
    marked = sorted(
        v.path.split("/")[-1] for v in model.weights if is_ssm_parameter(v)
    )
    assert marked == ["A_imag", "log_A_real", "log_dt"]
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert (
        sorted(
            v.path.split("/")[-1]
            for v in restored.weights
            if is_ssm_parameter(v)
        )
        == marked
    )
    assert not any(
        is_ssm_parameter(v) for v in restored.layers[0].norm_layer.weights
    )
