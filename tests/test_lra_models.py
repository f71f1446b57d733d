"""LRA classifiers: every backbone trains on every task's input shape."""

import keras
import numpy as np
import pytest

from applications.lra import models
from applications.lra import presets
from keras_ssm.layers.base import is_ssm_parameter
from tests.helpers import assert_save_load_roundtrip
from tests.helpers import to_numpy

LENGTH = 16
TINY = {"depth": 1, "d_model": 8}
BLOCK = {
    "s4d": {"d_state": 4, "bidirectional": True},
    "etsmlp": {"hidden_ratio": 2, "bidirectional": True},
    "etsmlp_gate": {"hidden_ratio": 2, "bidirectional": True},
    "mamba": {"d_state": 4, "expand": 2, "bidirectional": True},
    "transformer": {"num_heads": 2},
}
# One task per input kind: tokens, pixels, token pairs.
KIND_TASKS = {"tokens": "listops", "pixels": "pathfinder", "pair": "retrieval"}
# XLA compilation costs more than it saves for a few tiny TF steps.
JIT_COMPILE = False if keras.backend.backend() == "tensorflow" else "auto"


def _batch(task, batch_size=4, length=LENGTH, seed=0):
    rng = np.random.default_rng(seed)
    if task == "pathfinder":
        x = rng.normal(size=(batch_size, length, 1)).astype("float32")
        return x, rng.integers(0, 2, batch_size)
    tokens = rng.integers(1, 15, size=(batch_size, length)).astype("int32")
    tokens[:, length // 2 + 1 :] = 0  # padding at the end
    tokens[0, 3:] = 0
    if task == "retrieval":
        return [tokens, tokens[::-1].copy()], rng.integers(0, 2, batch_size)
    return tokens, rng.integers(0, 10, batch_size)


def _model(task, backbone, length=LENGTH, **overrides):
    config = {**TINY, **BLOCK[backbone], **overrides}
    return models.build_classifier(
        task, backbone, sequence_length=length, **config
    )


def _train_a_few_steps(task, backbone):
    model = _model(task, backbone)
    training = presets.get_preset(task, backbone, "cpu")["training"]
    models.compile_classifier(
        model, training, steps_per_epoch=2, epochs=1, jit_compile=JIT_COMPILE
    )
    x, y = _batch(task)
    before = [to_numpy(w) for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [to_numpy(w) for w in model.trainable_weights]
    changed = sum(not np.allclose(a, b) for a, b in zip(before, after))
    assert changed >= len(before) // 2
    logits = to_numpy(model(x))
    num_classes = 10 if task == "listops" else 2
    assert logits.shape == (4, num_classes) and np.all(np.isfinite(logits))


# The two measured backbones run in the quick set; the others (and every
# backbone on the pixel and pair shapes) are marked slow to keep the quick
# set short: each one compiles a training step.
@pytest.mark.parametrize(
    "backbone",
    [
        "s4d",
        "etsmlp_gate",
        pytest.param("etsmlp", marks=pytest.mark.slow),
        pytest.param("mamba", marks=pytest.mark.slow),
        pytest.param("transformer", marks=pytest.mark.slow),
    ],
)
def test_each_backbone_trains_on_tokens(backbone):
    _train_a_few_steps("listops", backbone)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pixels", "pair"])
@pytest.mark.parametrize("backbone", models.BACKBONES)
def test_each_backbone_trains_on_pixels_and_pairs(backbone, kind):
    _train_a_few_steps(KIND_TASKS[kind], backbone)


@pytest.mark.parametrize("backbone", ["s4d", "etsmlp_gate"])
def test_padding_does_not_change_predictions(backbone):
    """Masked blocks and masked mean pooling ignore the padded steps."""
    short = _model("listops", backbone, length=LENGTH)
    long = _model("listops", backbone, length=LENGTH + 8)
    long.set_weights(short.get_weights())
    tokens, _ = _batch("listops")
    padded = np.pad(tokens, ((0, 0), (0, 8)))
    np.testing.assert_allclose(
        to_numpy(long(padded)), to_numpy(short(tokens)), atol=2e-5
    )


def test_retrieval_uses_the_matching_head():
    model = _model("retrieval", "s4d")
    names = [layer.name for layer in model.layers]
    assert "encoder" in names and "matching_features" in names
    features = model.get_layer("matching_features")
    assert features.output.shape[-1] == 4 * TINY["d_model"]
    x, _ = _batch("retrieval")
    swapped = to_numpy(model([x[1], x[0]]))
    # u - v changes sign when the documents swap: not a symmetric head.
    assert not np.allclose(swapped, to_numpy(model(x)))


def test_lipschitz_option_adds_the_penalty():
    model = _model("listops", "s4d", lipschitz=0.5)
    layer = model.get_layer("lipschitz")
    assert layer.weight == pytest.approx(0.5)
    tokens, _ = _batch("listops")
    model(tokens)
    assert len(model.losses) == 1 and float(to_numpy(model.losses[0])) > 0
    plain = _model("listops", "s4d")
    assert "lipschitz" not in [layer.name for layer in plain.layers]


def test_save_load_roundtrip(tmp_path):
    model = _model("listops", "s4d")
    tokens, _ = _batch("listops")
    assert_save_load_roundtrip(model, tokens, tmp_path)


def test_ssm_parameters_get_no_weight_decay():
    model = _model("listops", "s4d")
    training = presets.get_preset("listops", "s4d", "paper")["training"]
    models.compile_classifier(model, training, steps_per_epoch=10)
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    ssm = [v for v in model.trainable_variables if is_ssm_parameter(v)]
    other = [v for v in model.trainable_variables if not is_ssm_parameter(v)]
    assert ssm and other
    assert not any(optimizer._use_weight_decay(v) for v in ssm)
    assert all(
        optimizer._use_weight_decay(v) for v in other if "kernel" in v.name
    )
    assert optimizer.ssm_learning_rate == 0.001


def test_presets_follow_the_s4_table_and_validate():
    listops = presets.get_preset("listops", "s4d", "paper")
    assert listops["model"]["depth"] == 8 and listops["model"]["d_model"] == 128
    assert listops["model"]["norm"] == "batch"
    assert listops["training"]["batch_size"] == 50
    assert listops["training"]["weight_decay"] == 0.05
    assert listops["data"]["max_length"] == 2000
    pathx = presets.get_preset("pathx", "s4d", "paper")
    assert pathx["model"]["layer_kwargs"]["dt_min"] == 1e-4
    assert presets.sequence_length("pathx", pathx["data"]) == 128 * 128
    cpu = presets.get_preset("listops", "etsmlp_gate", "cpu")
    assert cpu["model"]["d_model"] < listops["model"]["d_model"]
    with pytest.raises(ValueError, match="preset"):
        presets.get_preset("listops", "s4d", "huge")
    with pytest.raises(ValueError, match="backbone"):
        presets.get_preset("listops", "lstm")
    with pytest.raises(ValueError, match="task"):
        models.build_classifier("sudoku", "s4d")
    with pytest.raises(ValueError, match="backbone"):
        models.make_block("rnn", 8, {})
    with pytest.raises(ValueError, match="depth"):
        models.build_classifier("listops", "s4d", depth=0)


def test_classifier_accepts_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = _model("listops", "s4d")
    tokens, _ = _batch("listops")
    logits = model(tokens)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.all(np.isfinite(to_numpy(logits)))
