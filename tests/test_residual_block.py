"""`ResidualBlock`, the residual logic every block shares, and `SSD`."""

import keras
import numpy as np
import pytest

import keras_ssm
from keras_ssm.layers import SSD
from keras_ssm.layers import ResidualBlock
from tests.helpers import to_numpy


class ScaleBlock(ResidualBlock):
    """A block whose mixer is a causal cumulative sum times a weight.

    Small enough to check the residual logic against NumPy.
    """

    def build_mixer(self, input_shape):
        self.scale = self.add_weight(
            name="scale", shape=(self.channels,), initializer="ones"
        )

    def mix(self, x, mask=None, training=None, factor=1.0):
        return keras.ops.cumsum(x, axis=1) * self.scale * factor

    def mixer_initial_state(self, batch_size):
        return keras.ops.zeros((batch_size, self.channels))

    def mix_step(self, x_t, state, factor=1.0):
        state = state + x_t
        return state * self.scale * factor, state


def layer_norm(x, epsilon=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + epsilon)


@pytest.mark.parametrize("prenorm", [True, False])
def test_residual_logic_matches_numpy(prenorm):
    x = np.random.default_rng(0).normal(size=(2, 6, 4))
    block = ScaleBlock(norm="layer", prenorm=prenorm, norm_epsilon=1e-3)
    y = to_numpy(block(x.astype("float32"), factor=2.0))
    if prenorm:
        expected = x + 2.0 * np.cumsum(layer_norm(x, 1e-3), axis=1)
    else:
        expected = layer_norm(x + 2.0 * np.cumsum(x, axis=1), 1e-3)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("prenorm", [True, False])
def test_step_equals_call(prenorm):
    x = np.random.default_rng(1).normal(size=(2, 7, 3)).astype("float32")
    block = ScaleBlock(norm="rms", prenorm=prenorm)
    y = to_numpy(block(x, factor=0.5))
    state = block.get_initial_state(2)
    for t in range(x.shape[1]):
        y_t, state = block.step(x[:, t], state, factor=0.5)
        np.testing.assert_allclose(to_numpy(y_t), y[:, t], atol=1e-5)


def test_mask_zeroes_padded_steps_and_empty_inputs_pass():
    x = np.ones((2, 5, 3), "float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    y = to_numpy(ScaleBlock()(x, mask=mask))
    assert np.all(y[0, 3:] == 0) and np.all(y[1] != 0)
    assert tuple(ScaleBlock()(np.zeros((2, 0, 3), "float32")).shape) == (
        2,
        0,
        3,
    )


def test_bidirectional_block_has_no_step():
    block = ScaleBlock(bidirectional=True)
    block(np.ones((1, 4, 2), "float32"))
    with pytest.raises(ValueError, match="bidirectional=True"):
        block.step(np.ones((1, 2), "float32"), block.get_initial_state(1))


def test_bad_base_arguments_name_themselves():
    with pytest.raises(ValueError, match="`norm`"):
        ScaleBlock(norm="group")
    with pytest.raises(ValueError, match="`dropout`"):
        ScaleBlock(dropout=1.5)
    with pytest.raises(ValueError, match="`norm_epsilon`"):
        ScaleBlock(norm_epsilon=-1.0)
    with pytest.raises(TypeError, match="`prenorm`"):
        ScaleBlock(prenorm="yes")


@pytest.mark.parametrize(
    "cls",
    [
        keras_ssm.layers.S4DBlock,
        keras_ssm.layers.ETSMLPBlock,
        keras_ssm.layers.ETSMLPGate,
        keras_ssm.layers.MambaBlock,
        keras_ssm.layers.Mamba2Block,
    ],
)
def test_every_block_is_a_residual_block_with_norm_epsilon(cls):
    assert issubclass(cls, ResidualBlock)
    kwargs = {"intermediate_dim": 16} if "ETSMLP" in cls.__name__ else {}
    if cls is keras_ssm.layers.Mamba2Block:
        kwargs = {"d_state": 4, "headdim": 4}
    block = cls(norm_epsilon=1e-3, **kwargs)
    assert block.norm_layer.epsilon == 1e-3
    assert cls.from_config(block.get_config()).norm_epsilon == 1e-3


def test_mamba2_norm_epsilon_reaches_the_gated_norm():
    x = np.random.default_rng(2).normal(size=(1, 5, 8)).astype("float32")
    small = keras_ssm.layers.Mamba2Block(d_state=4, headdim=4)
    large = keras_ssm.layers.Mamba2Block(d_state=4, headdim=4, norm_epsilon=1)
    y_small = to_numpy(small(x))
    large.build(x.shape)
    large.set_weights(small.get_weights())
    y_large = to_numpy(large(x))
    for a, b in zip(small.weights, large.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert np.abs(y_small - y_large).max() > 1e-3


# -- SSD ----------------------------------------------------------------------


def ssd_inputs(batch=2, length=9, heads=4, headdim=2, groups=2, d_state=3):
    width = heads * headdim + 2 * groups * d_state + heads
    rng = np.random.default_rng(4)
    return rng.normal(size=(batch, length, width)).astype("float32")


def test_ssd_output_shape_step_and_config():
    layer = SSD(d_state=3, headdim=2, ngroups=2, d_conv=3)
    x = ssd_inputs()
    y = to_numpy(layer(x))
    assert y.shape == (2, 9, 8)
    assert layer.compute_output_shape((None, None, x.shape[-1])) == (
        None,
        None,
        8,
    )
    symbolic = layer(keras.Input((None, x.shape[-1])))
    assert tuple(symbolic.shape) == (None, None, 8)
    state = layer.get_initial_state(2)
    for t in range(x.shape[1]):
        y_t, state = layer.step(x[:, t], state)
        np.testing.assert_allclose(to_numpy(y_t), y[:, t], atol=1e-4)
    clone = SSD.from_config(layer.get_config())
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(clone(x)), y, atol=1e-6)


def test_ssd_time_step_limit_clips_dt():
    x = ssd_inputs(length=6)
    free = SSD(d_state=3, headdim=2, ngroups=2)
    free(x)
    dt_raw = x[..., -4:] + to_numpy(free.dt_bias)
    dt = np.log1p(np.exp(dt_raw))
    low, high = np.quantile(dt, [0.3, 0.7])
    clipped = SSD(d_state=3, headdim=2, ngroups=2, time_step_limit=(low, high))
    clipped(x)
    clipped.set_weights(free.get_weights())
    np.testing.assert_allclose(
        to_numpy(clipped.step_size(x[..., -4:])),
        np.clip(dt, low, high),
        rtol=1e-5,
    )
    assert np.abs(to_numpy(clipped(x)) - to_numpy(free(x))).max() > 1e-4


def test_ssd_refuses_a_width_that_fits_no_head_count():
    with pytest.raises(ValueError, match="width"):
        SSD(d_state=3, headdim=2, ngroups=2)(np.zeros((1, 4, 13), "float32"))
    with pytest.raises(ValueError, match="`time_step_limit`"):
        SSD(time_step_limit=(0.1, 0.01))
