"""ETSMLP `paper` presets: the reference architectures, and they build."""

import keras
import numpy as np
import pytest

from applications.lra import models
from applications.lra import presets
from keras_ssm.layers import ETSMLPBlock
from tests.helpers import to_numpy

ETSMLP = ("etsmlp", "etsmlp_gate")
LRA_TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
LENGTH = 16

# Read off PKUAI-LINGroup/ETSMLP, architectures/LRA_model.py: (plain,
# gated) architecture, depth, width, hidden width, norm, dropout (ListOps:
# the README command's 0.0), r_min, r_max, max_phase.
REFERENCE = {
    "listops": (
        ("smlp_listop_complex_test1", "smlp_listop_complex_gate"),
        *(12, 160, 160, "layer", 0.0, 0.1, 0.9, 3.14),
    ),
    "text": (
        ("smlp_lra_imdb_complex_test1", "smlp_lra_imdb_complex_gate"),
        *(6, 160, 160, "layer", 0.1, 0.1, 0.9, 3.14),
    ),
    "retrieval": (
        ("smlp_lra_aan_complex_test1", "smlp_lra_aan_complex_gate"),
        *(6, 160, 160, "layer", 0.1, 0.9, 0.99, 0.314),
    ),
    "image": (
        ("smlp_lra_cifar10_complex_test1", "smlp_lra_cifar10_complex_gate"),
        *(12, 160, 320, "batch", 0.1, 0.6, 0.9, 3.14),
    ),
    "pathfinder": (
        ("smlp_lra_complex_pf32", "smlp_lra_complex_pf32_gate"),
        *(6, 128, 256, "batch", 0.1, 0.9, 0.9999, 0.314),
    ),
    "pathx": (
        ("smlp_lra_complex_pf128_base", "smlp_lra_complex_pf128_gate"),
        *(6, 128, 256, "batch", 0.1, 0.99, 0.9999, 0.314),
    ),
}


def _inputs(task, batch_size=2):
    rng = np.random.default_rng(0)
    if task in ("image", "pathfinder", "pathx"):
        return rng.normal(size=(batch_size, LENGTH, 1)).astype("float32")
    tokens = rng.integers(1, 15, size=(batch_size, LENGTH)).astype("int32")
    tokens[:, LENGTH - 3 :] = 0  # padding at the end
    return [tokens, tokens[::-1].copy()] if task == "retrieval" else tokens


def _layers(model):
    """The layers of the classifier's encoder (a sub-model for pairs)."""
    names = [layer.name for layer in model.layers]
    return (
        model.get_layer("encoder").layers
        if "encoder" in names
        else model.layers
    )


@pytest.mark.parametrize("backbone", ETSMLP)
@pytest.mark.parametrize("task", LRA_TASKS)
def test_etsmlp_paper_presets_match_the_reference(task, backbone):
    names, depth, width, hidden, norm, dropout, *ring = REFERENCE[task]
    preset = presets.get_preset(task, backbone, "paper")
    model = preset["model"]
    assert (
        presets.reference_architecture(task, backbone)
        == names[backbone == "etsmlp_gate"]
    )
    assert (model["depth"], model["d_model"]) == (depth, width)
    assert model["hidden_ratio"] * width == hidden
    assert (model["norm"], model["dropout"]) == (norm, dropout)
    assert model["bidirectional"] is True
    assert model["layer_kwargs"] == {
        **dict(zip(("r_min", "r_max", "max_phase"), ring)),
        "dt_min": 1e-3,
        "dt_max": 0.1,
        "max_lambda": 0.9999,
    }
    # The reference trains every weight at one learning rate.
    assert preset["training"]["ssm_learning_rate"] is None


def test_listops_training_follows_the_reference_command():
    training = presets.get_preset("listops", "etsmlp", "paper")["training"]
    assert training == {
        "learning_rate": 0.01,
        "ssm_learning_rate": None,
        "weight_decay": 0.01,
        "batch_size": 64,
        "epochs": 60,  # 90000 updates of 64 over 96000 expressions
    }
    # Settings not in the reference stay from the S4 table.
    text = presets.get_preset("text", "etsmlp_gate", "paper")["training"]
    s4d = presets.get_preset("text", "s4d", "paper")["training"]
    for key in ("learning_rate", "weight_decay", "batch_size", "epochs"):
        assert text[key] == s4d[key]
    mnist = presets.get_preset("mnist", "etsmlp_gate", "paper")["model"]
    image = presets.get_preset("image", "etsmlp_gate", "paper")["model"]
    assert mnist == image
    with pytest.raises(ValueError, match="backbone"):
        presets.reference_architecture("listops", "s4d")


@pytest.mark.parametrize("backbone", ETSMLP)
@pytest.mark.parametrize("task", LRA_TASKS)
def test_etsmlp_paper_presets_build(task, backbone):
    # Full-size builds cost ~10 s each under JAX on a busy CPU: keep every
    # block setting and shrink only depth and width.
    config = presets.get_preset(task, backbone, "paper")["model"]
    config.update(depth=2, d_model=16)
    model = models.build_classifier(
        task, backbone, sequence_length=LENGTH, **config
    )
    blocks = [
        layer for layer in _layers(model) if isinstance(layer, ETSMLPBlock)
    ]
    _, _, width, hidden, norm, _, r_min, r_max, max_phase = REFERENCE[task]
    assert len(blocks) == 2
    block = blocks[0]
    assert block.gated == (backbone == "etsmlp_gate")
    assert block.hidden_dim == 16 * hidden // width and block.channels == 16
    assert block.norm == norm and block.bidirectional
    # The preset's ring reaches the initialiser: lambda = exp(exp(w)).
    w = to_numpy(block.ces.lambda_loglog).astype("float64")
    log_lambda = np.exp(w[..., 0] + 1j * w[..., 1])
    radius = np.exp(log_lambda.real)
    assert np.all((radius > r_min - 1e-5) & (radius < r_max + 1e-5))
    assert np.all((log_lambda.imag >= -1e-6) & (log_lambda.imag <= max_phase))
    logits = model(_inputs(task), training=False)
    classes = 10 if task in ("listops", "image") else 2
    assert tuple(logits.shape) == (2, classes)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(logits)))
