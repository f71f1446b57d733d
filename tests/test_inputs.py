"""Inputs the layers must take: integers, empty batches, empty sequences.

Integer inputs are cast to the compute dtype (the same outputs as the equal
float inputs, in a float dtype); batch-0 and length-0 inputs give an empty
output of the right shape on every backend; the Lipschitz penalty of an
empty or fully masked batch is zero, not NaN.
"""

import keras
import numpy as np
import pytest

from keras_ssm.layers import CES
from keras_ssm.layers import S4D
from keras_ssm.layers import ETSMLPBlock
from keras_ssm.layers import ETSMLPGate
from keras_ssm.layers import LipschitzRegularization
from keras_ssm.layers import Mamba2Block
from keras_ssm.layers import MambaBlock
from keras_ssm.layers import S4DBlock
from keras_ssm.layers import SelectiveSSM
from keras_ssm.regularizers import LipschitzRegularizer
from keras_ssm.regularizers import lipschitz_penalty
from tests.helpers import to_numpy

LAYERS = {
    "S4D": lambda: S4D(d_state=4),
    "S4DBlock": lambda: S4DBlock(d_state=4),
    "S4DBlock_bidirectional": lambda: S4DBlock(d_state=4, bidirectional=True),
    "CES": lambda: CES(),
    "CES_bidirectional": lambda: CES(bidirectional=True),
    "ETSMLPBlock": lambda: ETSMLPBlock(6),
    "ETSMLPGate": lambda: ETSMLPGate(6, norm="batch"),
    "SelectiveSSM": lambda: SelectiveSSM(d_state=4),
    "MambaBlock": lambda: MambaBlock(d_state=4),
    "MambaBlock_bidirectional": lambda: MambaBlock(
        d_state=4, bidirectional=True
    ),
    # 4 channels, expand 2: two heads of 4.
    "Mamba2Block": lambda: Mamba2Block(d_state=4, headdim=4),
    "Mamba2Block_bidirectional": lambda: Mamba2Block(
        d_state=4, headdim=4, bidirectional=True
    ),
    "LipschitzRegularization": lambda: LipschitzRegularization(0.1),
}
CAUSAL = (
    "S4D",
    "S4DBlock",
    "CES",
    "ETSMLPBlock",
    "SelectiveSSM",
    "MambaBlock",
    "Mamba2Block",
)


def int_inputs(shape=(2, 6, 4), seed=0):
    return np.random.default_rng(seed).integers(
        -3, 4, size=shape, dtype="int32"
    )


def is_float(x):
    return "float" in str(keras.backend.standardize_dtype(x.dtype))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_integer_inputs_equal_float_inputs(name):
    layer = LAYERS[name]()
    x = int_inputs()
    y_float = layer(x.astype("float32"))
    y_int = layer(x)
    assert is_float(y_int), y_int.dtype
    np.testing.assert_allclose(
        to_numpy(y_int), to_numpy(y_float), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("name", CAUSAL)
def test_integer_steps_equal_float_steps(name):
    layer = LAYERS[name]()
    x = int_inputs()
    layer(x)
    state = layer.get_initial_state(2)
    y_int, _ = layer.step(x[:, 0], state)
    y_float, _ = layer.step(x[:, 0].astype("float32"), state)
    assert is_float(y_int), y_int.dtype
    np.testing.assert_allclose(
        to_numpy(y_int), to_numpy(y_float), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "name", sorted(set(LAYERS) - {"LipschitzRegularization"})
)
@pytest.mark.parametrize("shape", [(0, 5, 4), (2, 0, 4), (0, 0, 4)])
def test_empty_inputs_give_empty_outputs(name, shape):
    layer = LAYERS[name]()
    y = layer(np.zeros(shape, "float32"))
    assert tuple(y.shape) == shape and is_float(y)
    # A layer built on real data handles them too.
    layer = LAYERS[name]()
    layer(np.ones((2, 5, 4), "float32"))
    y = layer(np.zeros(shape, "int32"))
    assert tuple(y.shape) == shape and is_float(y)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="lengths unknown until run time exist in TensorFlow graphs only",
)
@pytest.mark.parametrize(
    "name", sorted(set(LAYERS) - {"LipschitzRegularization"})
)
def test_graph_with_unknown_length_serves_empty_and_full_inputs(name):
    import tensorflow as tf

    layer = LAYERS[name]()
    full = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    expected = to_numpy(layer(full))
    serve = tf.function(
        layer, input_signature=[tf.TensorSpec((None, None, 4), "float32")]
    )
    assert tuple(serve(np.zeros((2, 0, 4), "float32")).shape) == (2, 0, 4)
    np.testing.assert_allclose(
        to_numpy(serve(full)), expected, rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("name", CAUSAL)
def test_empty_batch_steps(name):
    layer = LAYERS[name]()
    layer(np.ones((2, 5, 4), "float32"))
    state = layer.get_initial_state(0)
    y, _ = layer.step(np.zeros((0, 4), "float32"), state)
    assert tuple(y.shape) == (0, 4)


def _layer_loss(layer, x, mask=None):
    layer(x, mask=mask)
    return float(to_numpy(layer.losses[-1]))


@pytest.mark.parametrize("normalize", [False, True])
def test_lipschitz_penalty_of_empty_or_masked_batch_is_zero(normalize):
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    none_valid = np.zeros((2, 5), bool)
    assert float(to_numpy(lipschitz_penalty(x, none_valid, normalize))) == 0.0
    empty = np.zeros((0, 5, 3), "float32")
    assert float(to_numpy(lipschitz_penalty(empty, normalize=normalize))) == 0
    layer = LipschitzRegularization(0.5, normalize=normalize)
    assert _layer_loss(layer, x, mask=none_valid) == 0.0
    assert _layer_loss(layer, empty) == 0.0
    regularizer = LipschitzRegularizer(0.5, normalize=normalize)
    assert float(to_numpy(regularizer(empty))) == 0.0
    # A partly masked batch still gets its (finite, positive) penalty.
    some_valid = none_valid.copy()
    some_valid[0, :3] = True
    assert _layer_loss(layer, x, mask=some_valid) > 0.0


def test_lipschitz_penalty_needs_two_steps_on_every_backend():
    layer = LipschitzRegularization(0.1)
    for length in (0, 1):
        with pytest.raises(ValueError, match="at least 2 time steps"):
            layer(np.zeros((2, length, 3), "float32"))
