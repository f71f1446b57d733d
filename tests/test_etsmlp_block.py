"""ETSMLP block and ETSMLP-Gate: formula, modes, size, learning."""

import keras
import numpy as np
import pytest

from keras_ssm.layers import ETSMLPBlock
from keras_ssm.layers import ETSMLPGate
from keras_ssm.optimizers import ssm_adamw
from tests.helpers import assert_mixed_precision_close
from tests.helpers import assert_padding_is_ignored
from tests.helpers import assert_refuses_bad_shapes
from tests.helpers import assert_save_load_roundtrip
from tests.helpers import run_steps
from tests.helpers import to_numpy
from tests.test_ces import reference_output as ces_reference


def inputs(batch=2, length=16, channels=4, seed=0):
    # One shape for most tests: JAX compiles each op once per shape.
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, channels)).astype("float32")


def dense(layer, x):
    kernel, bias = (to_numpy(w) for w in layer.weights)
    return x @ kernel + bias


def reference_block(block, x):
    """X_i + [sigmoid(W_g X) *] W2 relu(CES(W1 X)), X = LayerNorm(X_i)."""
    gamma, beta = (to_numpy(w) for w in block.norm_layer.weights)
    x = x.astype(np.float64)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    normed = (x - mean) / np.sqrt(var + 1e-5) * gamma + beta
    smoothed = ces_reference(block.ces, dense(block.input_projection, normed))
    z = dense(block.output_projection, np.maximum(smoothed, 0.0))
    if block.gated:
        z = z / (1.0 + np.exp(-dense(block.gate_projection, normed)))
    return x + z


@pytest.mark.parametrize("block_class", [ETSMLPBlock, ETSMLPGate])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_block_matches_numpy_formula(block_class, bidirectional):
    block = block_class(6, bidirectional=bidirectional, dt_min=0.1, dt_max=1)
    u = inputs()
    y = to_numpy(block(u))
    assert y.shape == u.shape
    np.testing.assert_allclose(
        y, reference_block(block, u), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_step_matches_call(norm):
    block = ETSMLPGate(8, norm=norm, r_min=0.5, dt_min=0.1, dt_max=1.0)
    u = inputs()
    expected = to_numpy(block(u))
    np.testing.assert_allclose(run_steps(block, u), expected, atol=1e-5)


@pytest.mark.parametrize(
    "ablation",
    [{"use_alpha": False}, {"use_beta": False}, {"use_omega": False}],
)
def test_ablated_blocks_match_formula_and_step(ablation):
    # The paper's Table 3 ablations reach the block's CES.
    block = ETSMLPBlock(6, r_min=0.5, dt_min=0.1, dt_max=1.0, **ablation)
    u = inputs()
    expected = to_numpy(block(u))
    np.testing.assert_allclose(
        expected, reference_block(block, u), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(run_steps(block, u), expected, atol=1e-5)
    ((key, value),) = ablation.items()
    assert getattr(block.ces, key) is value
    assert block.get_config()[key] is value
    full = ETSMLPBlock(6)
    full(u)
    assert block.count_params() < full.count_params()


def test_causal_unless_bidirectional():
    u = inputs()
    changed = u.copy()
    changed[:, 10:] = inputs(length=6, seed=1)  # a shift would be normed out
    causal = ETSMLPGate(8, dt_min=0.1, dt_max=1.0)
    y1, y2 = to_numpy(causal(u)), to_numpy(causal(changed))
    np.testing.assert_allclose(y1[:, :10], y2[:, :10], atol=1e-5)
    both = ETSMLPGate(8, dt_min=0.1, dt_max=1.0, bidirectional=True)
    y1, y2 = to_numpy(both(u)), to_numpy(both(changed))
    assert np.abs(y1[:, :10] - y2[:, :10]).max() > 1e-3


@pytest.mark.parametrize("d", [32, 160])
def test_ces_adds_about_3_over_d_to_the_mlp(d):
    block = ETSMLPBlock(d)
    block.build((None, None, d))
    mlp = (
        block.input_projection.count_params()
        + block.output_projection.count_params()
    )
    overhead = block.ces.count_params()
    assert mlp == 2 * d * d + 2 * d  # the element-wise MLP, hidden = d
    assert overhead == 7 * d  # lambda, alpha, beta complex; omega real
    assert 3.0 / d < overhead / mlp < 4.0 / d
    norm = block.norm_layer.count_params()
    assert block.count_params() == mlp + overhead + norm
    gate = ETSMLPGate(d)
    gate.build((None, None, d))
    assert gate.count_params() == block.count_params() + d * d + d


@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_steps_contribute_nothing(bidirectional):
    block = ETSMLPGate(8, bidirectional=bidirectional, dt_min=0.1, dt_max=1)
    assert_padding_is_ignored(block, inputs(), valid=11)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    reference = ETSMLPGate(8, bidirectional=True, dtype="float32")
    block = ETSMLPGate(8, bidirectional=True, dtype=policy)
    assert_mixed_precision_close(reference, block, policy, inputs())
    assert all(w.dtype == "float32" for w in block.ces.weights)


def test_config_round_trip():
    block = ETSMLPGate(
        12,
        norm="batch",
        dropout=0.1,
        activation="gelu",
        bidirectional=True,
        r_min=0.9,
        r_max=0.999,
        max_phase=0.314,
        complex=False,
        name="gate_cfg",
    )
    config = block.get_config()
    assert config["gated"] and config["r_max"] == 0.999
    clone = ETSMLPGate.from_config(config)
    assert clone.get_config() == config
    assert clone.ces.get_config()["complex"] is False


def test_keras_save_and_load_round_trip(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((16, 4)),
            ETSMLPBlock(8, norm="batch", init="stable", dropout=0.1),
            ETSMLPGate(6, bidirectional=True, complex=False),
        ]
    )
    restored = assert_save_load_roundtrip(model, inputs(), tmp_path)
    assert isinstance(restored.layers[1], ETSMLPGate)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"intermediate_dim": 0}, "intermediate_dim"),
        ({"intermediate_dim": 8, "norm": "group"}, "norm"),
        ({"intermediate_dim": 8, "dropout": -0.1}, "dropout"),
        ({"intermediate_dim": 8, "r_max": 1.0}, "r_max"),
        ({"intermediate_dim": 8, "use_omega": "no"}, "use_omega"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ETSMLPBlock(**kwargs)


def test_gate_cannot_be_ungated():
    with pytest.raises(ValueError, match="gated"):
        ETSMLPGate(8, gated=False)


def test_bad_input_shapes_raise():
    assert_refuses_bad_shapes(ETSMLPBlock(8), 3)


def majority_task(num, length=16, vocab=4, seed=0):
    """Token sequences labelled with their (unique) most frequent token."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, vocab, size=num)
    probs = np.full((num, vocab), 0.6 / (vocab - 1))
    probs[np.arange(num), labels] = 0.4
    tokens = np.stack([rng.choice(vocab, length, p=p) for p in probs])
    counts = np.stack([(tokens == v).sum(1) for v in range(vocab)], 1)
    top = np.sort(counts, 1)
    keep = top[:, -1] > top[:, -2]  # drop ties
    return tokens[keep], counts[keep].argmax(1)


@pytest.mark.slow  # a few epochs of fit
def test_etsmlp_gate_learns_majority_from_the_last_step():
    """Reading only the last step, the model must smooth over the sequence
    (chance is 1/4)."""
    length = 16
    x, y = majority_task(768, length)
    split = len(x) * 2 // 3
    model = keras.Sequential(
        [
            keras.Input((length,), dtype="int32"),
            keras.layers.Embedding(4, 16),
            ETSMLPGate(32),
            ETSMLPGate(32),
            keras.layers.Cropping1D((length - 1, 0)),  # the last step only
            keras.layers.Flatten(),
            keras.layers.Dense(4),
        ]
    )
    model.compile(
        optimizer=ssm_adamw(1e-2, 0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x[:split], y[:split], epochs=4, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(x[split:], y[split:], verbose=0)
    assert accuracy > 0.6, accuracy
