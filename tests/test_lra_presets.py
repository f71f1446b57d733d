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
        # --lr-scheduler linear_decay --warmup-updates 3000
        # --end-learning-rate 0.0 --adam-betas '(0.9, 0.98)' --clip-norm 1.0
        "schedule": "linear",
        "warmup_steps": 3000,
        "beta_2": 0.98,
        "clipnorm": 1.0,
        "decay_ssm_parameters": True,  # fairseq's Adam decays every weight
    }
    # Settings not in the reference stay from the S4 table.
    text = presets.get_preset("text", "etsmlp_gate", "paper")["training"]
    s4d = presets.get_preset("text", "s4d", "paper")["training"]
    for key in (
        "learning_rate",
        "weight_decay",
        "batch_size",
        "epochs",
        "schedule",
        "warmup_steps",
    ):
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


# state-spaces/s4, configs/experiment/lra/s4-lra-*.yaml: the cosine_warmup
# scheduler's default 1000 warm-up steps, or the config's one epoch.
S4_WARMUP = {
    "listops": ("warmup_steps", 1000),
    "text": ("warmup_steps", 1000),
    "retrieval": ("warmup_epochs", 1),
    "image": ("warmup_steps", 1000),
    "pathfinder": ("warmup_epochs", 1),
    "pathx": ("warmup_epochs", 1),
}


@pytest.mark.parametrize("task", LRA_TASKS)
def test_s4d_paper_presets_warm_up_as_the_reference(task):
    training = presets.get_preset(task, "s4d", "paper")["training"]
    key, value = S4_WARMUP[task]
    assert training["schedule"] == "cosine"
    assert training[key] == value
    assert training.get("final_lr_fraction", 0.0) == 0.0


def _learning_rates(optimizer, steps):
    schedule = optimizer._learning_rate
    return np.array([float(to_numpy(schedule(s))) for s in steps])


def test_compiled_schedules_follow_the_presets():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10)])
    # ETSMLP ListOps: linear warm-up over 3000 steps, linear decay to 0 at
    # 60 x 1500 = 90000 steps, Adam beta_2 0.98, clipping at norm 1.
    training = presets.get_preset("listops", "etsmlp", "paper")["training"]
    models.compile_classifier(model, training, steps_per_epoch=1500)
    optimizer = model.optimizer
    np.testing.assert_allclose(
        _learning_rates(optimizer, [0, 1500, 3000, 46500, 90000]),
        [0.0, 0.005, 0.01, 0.005, 0.0],
        atol=1e-7,
    )
    assert optimizer.beta_2 == 0.98 and optimizer.clipnorm == 1.0
    assert optimizer.decay_ssm_parameters
    # S4D Retrieval: one epoch (here 100 steps) of warm-up, cosine to 0.
    training = presets.get_preset("retrieval", "s4d", "paper")["training"]
    models.compile_classifier(model, training, steps_per_epoch=100)
    total = 100 * training["epochs"]
    rates = _learning_rates(model.optimizer, [50, 100, total])
    np.testing.assert_allclose(rates, [0.005, 0.01, 0.0], atol=1e-7)
    assert model.optimizer.beta_2 == 0.999 and model.optimizer.clipnorm is None
    assert not model.optimizer.decay_ssm_parameters
    # A smoke run shorter than the warm-up still compiles and trains.
    training = presets.get_preset("listops", "s4d", "paper")["training"]
    models.compile_classifier(model, training, steps_per_epoch=2, epochs=1)
    assert _learning_rates(model.optimizer, [1])[0] == pytest.approx(0.01)
