"""The residual blocks share one vocabulary and one recurrent-mode contract.

`S4DBlock`, `ETSMLPBlock`/`ETSMLPGate`, `MambaBlock` and `Mamba2Block` take
`norm`, `prenorm`, `dropout` and `bidirectional` with the same meaning and
the same checks; the inner width is `intermediate_dim`; `step` works with
every norm and pre- or post-norm; the recurrent API refuses an unbuilt layer
clearly.
"""

import keras
import numpy as np
import pytest

from keras_ssm.layers import CES
from keras_ssm.layers import S4D
from keras_ssm.layers import ETSMLPBlock
from keras_ssm.layers import ETSMLPGate
from keras_ssm.layers import Mamba2Block
from keras_ssm.layers import MambaBlock
from keras_ssm.layers import S4DBlock
from keras_ssm.layers import SelectiveSSM
from tests.helpers import run_steps
from tests.helpers import to_numpy

BLOCKS = {
    "s4d": lambda **kw: S4DBlock(d_state=4, **kw),
    "etsmlp": lambda **kw: ETSMLPBlock(6, **kw),
    "etsmlp_gate": lambda **kw: ETSMLPGate(6, **kw),
    "mamba": lambda **kw: MambaBlock(d_state=4, **kw),
    "mamba2": lambda **kw: Mamba2Block(d_state=4, headdim=4, **kw),
}


def inputs(batch=2, length=7, channels=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, channels)).astype("float32")


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_every_block_takes_the_shared_arguments(name):
    block = BLOCKS[name](
        norm="rms", prenorm=False, dropout=0.25, bidirectional=True
    )
    config = block.get_config()
    assert config["norm"] == "rms"
    assert config["prenorm"] is False
    assert config["dropout"] == 0.25
    assert config["bidirectional"] is True
    y = block(inputs())
    assert tuple(y.shape) == (2, 7, 4)


@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize(
    "kwargs, error, argument",
    [
        ({"norm": "group"}, ValueError, "`norm`"),
        ({"prenorm": "false"}, TypeError, "`prenorm`"),
        ({"bidirectional": "no"}, TypeError, "`bidirectional`"),
        ({"dropout": 1.0}, ValueError, "`dropout`"),
        ({"dropout": None}, TypeError, "`dropout`"),
    ],
)
def test_every_block_refuses_the_same_bad_values(name, kwargs, error, argument):
    with pytest.raises(error, match=argument):
        BLOCKS[name](**kwargs)


@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize("norm", ["layer", "batch", "rms"])
@pytest.mark.parametrize("prenorm", [True, False])
def test_step_matches_call_for_every_norm(name, norm, prenorm):
    block = BLOCKS[name](norm=norm, prenorm=prenorm)
    x = inputs()
    expected = to_numpy(block(x, training=False))
    np.testing.assert_allclose(
        run_steps(block, x), expected, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_post_norm_normalises_after_the_residual(name):
    """prenorm=False: outputs are LayerNorm(x + f(x)), unit scale per step."""
    block = BLOCKS[name](norm="layer", prenorm=False)
    y = to_numpy(block(3.0 + 5.0 * inputs()))
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(-1), 1.0, atol=1e-2)
    pre = BLOCKS[name](norm="layer", prenorm=True)
    y_pre = to_numpy(pre(3.0 + 5.0 * inputs()))
    # Pre-norm: the residual stream itself is not normalised.
    assert not np.allclose(y_pre.mean(-1), 0.0, atol=1e-2)


def test_etsmlp_intermediate_dim_and_its_old_name():
    block = ETSMLPBlock(intermediate_dim=12)
    assert block.intermediate_dim == 12 and block.hidden_dim == 12
    config = block.get_config()
    assert config["intermediate_dim"] == 12 and "hidden_dim" not in config
    renamed = "`hidden_dim` of {} is deprecated: use `intermediate_dim`"
    with pytest.warns(DeprecationWarning, match=renamed.format("ETSMLPBlock")):
        old = ETSMLPBlock(hidden_dim=12)
    assert old.intermediate_dim == 12 and old.get_config() == {
        **config,
        "name": old.name,
    }
    with pytest.warns(DeprecationWarning, match=renamed.format("ETSMLPGate")):
        old_gate = ETSMLPGate.from_config({"hidden_dim": 5, "gated": True})
    assert old_gate.intermediate_dim == 5
    with pytest.raises(ValueError, match="`intermediate_dim`.*`hidden_dim`"):
        ETSMLPBlock(intermediate_dim=12, hidden_dim=12)
    with pytest.raises(ValueError, match="`intermediate_dim`.*`hidden_dim`"):
        ETSMLPGate(12, hidden_dim=12)
    with pytest.raises(TypeError, match="`intermediate_dim`"):
        ETSMLPBlock(hidden_dim=True)
    with pytest.raises(TypeError, match="intermediate_dim"):
        ETSMLPBlock()
    block.build((None, None, 4))
    assert tuple(block.input_projection.kernel.shape) == (4, 12)


MAMBAS = {
    "mamba": lambda **kw: MambaBlock(d_state=4, **kw),
    # headdim 4 divides every inner width below.
    "mamba2": lambda **kw: Mamba2Block(d_state=4, headdim=4, **kw),
}


@pytest.mark.parametrize("name", sorted(MAMBAS))
def test_mamba_intermediate_dim_and_expand(name):
    make = MAMBAS[name]
    default = make()
    default.build((None, None, 8))
    assert default.d_inner == 16 and default.expand == 2
    absolute = make(intermediate_dim=12)
    absolute.build((None, None, 8))
    assert absolute.d_inner == 12
    assert tuple(absolute.out_proj.kernel.shape) == (12, 8)
    config = absolute.get_config()
    assert config["intermediate_dim"] == 12 and config["expand"] is None
    restored = type(absolute).from_config(config)
    restored.build((None, None, 8))
    assert restored.d_inner == 12
    agree = make(expand=3, intermediate_dim=24)
    agree.build((None, None, 8))
    assert agree.d_inner == 24
    with pytest.raises(ValueError, match="intermediate_dim.*expand"):
        make(expand=2, intermediate_dim=24).build((None, None, 8))
    with pytest.raises(ValueError, match="`intermediate_dim`"):
        make(intermediate_dim=0)


def test_s4d_block_bidirectional_reaches_the_s4d_layer():
    block = S4DBlock(d_state=4, bidirectional=True)
    assert block.s4d.bidirectional
    x = inputs()
    block(x)
    changed = x.copy()
    changed[:, -1, 0] += 1.0  # not all channels: LayerNorm would undo it
    # Anti-causal taps: the last step moves the first output.
    assert not np.allclose(
        to_numpy(block(x))[:, 0], to_numpy(block(changed))[:, 0]
    )
    with pytest.raises(ValueError, match="bidirectional"):
        block.step(x[:, 0], block.get_initial_state(2))
    restored = S4DBlock.from_config(block.get_config())
    assert restored.bidirectional and restored.s4d.bidirectional


UNBUILT = {
    "S4D": lambda: S4D(d_state=4),
    "S4DBlock": lambda: S4DBlock(d_state=4),
    "CES": lambda: CES(),
    "ETSMLPBlock": lambda: ETSMLPBlock(6),
    "ETSMLPGate": lambda: ETSMLPGate(6),
    "SelectiveSSM": lambda: SelectiveSSM(d_state=4),
    "MambaBlock": lambda: MambaBlock(d_state=4),
    "Mamba2Block": lambda: Mamba2Block(d_state=4, headdim=4),
}


@pytest.mark.parametrize("name", sorted(UNBUILT))
def test_recurrent_api_before_build_raises_clearly(name):
    layer = UNBUILT[name]()
    with pytest.raises(ValueError, match=f"{name} is not built"):
        layer.get_initial_state(2)
    with pytest.raises(ValueError, match=f"{name} is not built"):
        layer.step(keras.ops.zeros((2, 4)), None)
