"""ETSMLP `paper` presets: the reference architectures, and they build."""

import copy
import json

import keras
import numpy as np
import pytest

from keras_ssm.layers import ETSMLPBlock
from keras_ssm.models import SSMClassifier
from keras_ssm.models import get_preset
from keras_ssm.models import list_presets
from keras_ssm.models import training_recipe
from keras_ssm.presets import lra_rings
from tests.helpers import to_numpy

ETSMLP = ("etsmlp", "etsmlp_gate")
LRA_TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
LENGTH = 16

# Read off PKUAI-LINGroup/ETSMLP, architectures/LRA_model.py: (plain,
# gated) architecture, r_min, r_max, max_phase of the CES ring.
REFERENCE = {
    "listops": (
        ("smlp_listop_complex_test1", "smlp_listop_complex_gate"),
        *(0.1, 0.9, 3.14),
    ),
    "text": (
        ("smlp_lra_imdb_complex_test1", "smlp_lra_imdb_complex_gate"),
        *(0.1, 0.9, 3.14),
    ),
    "retrieval": (
        ("smlp_lra_aan_complex_test1", "smlp_lra_aan_complex_gate"),
        *(0.9, 0.99, 0.314),
    ),
    "image": (
        ("smlp_lra_cifar10_complex_test1", "smlp_lra_cifar10_complex_gate"),
        *(0.6, 0.9, 3.14),
    ),
    "pathfinder": (
        ("smlp_lra_complex_pf32", "smlp_lra_complex_pf32_gate"),
        *(0.9, 0.9999, 0.314),
    ),
    "pathx": (
        ("smlp_lra_complex_pf128_base", "smlp_lra_complex_pf128_gate"),
        *(0.99, 0.9999, 0.314),
    ),
}

# Chu and Lin (2024), Table 5: embedding size D (the width), layers L,
# hidden features H, norm, learning rate, weight decay, dropout.
TABLE_5 = {
    "listops": (160, 12, 160, "layer", 0.01, 0.01, 0.0),
    "text": (160, 4, 160, "layer", 0.005, 0.01, 0.1),
    "retrieval": (160, 6, 160, "layer", 0.005, 0.01, 0.1),
    "image": (160, 12, 320, "batch", 0.01, 0.01, 0.0),
    "pathfinder": (128, 6, 256, "batch", 0.01, 0.01, 0.0),
    "pathx": (128, 6, 256, "batch", 0.05, 0.01, 0.0),
}
# The sequential-image presets the paper does not run use the Image row.
IMAGE_LIKE = ("mnist", "pmnist", "fashion_mnist", "pfashion_mnist")


def _inputs(task, batch_size=2):
    rng = np.random.default_rng(0)
    if task in ("image", "pathfinder", "pathx"):
        return rng.normal(size=(batch_size, LENGTH, 1)).astype("float32")
    tokens = rng.integers(1, 15, size=(batch_size, LENGTH)).astype("int32")
    tokens[:, LENGTH - 3 :] = 0  # padding at the end
    return [tokens, tokens[::-1].copy()] if task == "retrieval" else tokens


def _training(task, backbone, size="paper"):
    return get_preset(f"{backbone}_{task}_{size}")["training"]


def _backbone(task, backbone, size="paper"):
    config = get_preset(f"{backbone}_{task}_{size}")["model"]["config"]
    return config["backbone"]


@pytest.mark.parametrize("backbone", ETSMLP)
@pytest.mark.parametrize("task", LRA_TASKS + IMAGE_LIKE)
def test_etsmlp_paper_presets_follow_table_5(task, backbone):
    width, depth, hidden, norm, lr, wd, dropout = TABLE_5[
        "image" if task in IMAGE_LIKE else task
    ]
    preset = get_preset(f"{backbone}_{task}_paper")
    model = preset["model"]["config"]["backbone"]
    assert (model["num_layers"], model["hidden_dim"]) == (depth, width)
    assert model["intermediate_dim"] == hidden
    assert (model["norm"], model["dropout"]) == (norm, dropout)
    assert model["block_type"] == backbone
    training = preset["training"]
    assert (training["learning_rate"], training["weight_decay"]) == (lr, wd)
    assert "Table 5" in preset["source"]
    assert "not available" not in preset["source"]


@pytest.mark.parametrize("backbone", ETSMLP)
@pytest.mark.parametrize("task", LRA_TASKS)
def test_etsmlp_paper_presets_take_the_reference_rings(task, backbone):
    names, *ring = REFERENCE[task]
    preset = get_preset(f"{backbone}_{task}_paper")
    model = preset["model"]["config"]["backbone"]
    assert names[backbone == "etsmlp_gate"] in preset["source"]
    # Appendix B: bidirectional everywhere, max_lambda 0.9999.
    assert model["bidirectional"] is True
    # `lra_rings()`, the rings the CES docstring cites, are the presets'.
    assert lra_rings()[task] == tuple(ring)
    assert model["block_kwargs"] == {
        **dict(zip(("r_min", "r_max", "max_phase"), ring)),
        "dt_min": 1e-3,
        "dt_max": 0.1,
        "max_lambda": 0.9999,
    }
    # The reference trains every weight at one learning rate.
    assert preset["training"]["ssm_learning_rate"] is None


def test_etsmlp_training_follows_appendix_b():
    training = _training("listops", "etsmlp")
    assert training == {
        "learning_rate": 0.01,
        "ssm_learning_rate": None,
        "weight_decay": 0.01,
        # The reference README's ListOps command: 90000 updates of 64 over
        # 96000 expressions, --clip-norm 1.0.
        "batch_size": 64,
        "epochs": 60,
        "clipnorm": 1.0,
        # Appendix B: Adam (0.9, 0.98), warm-up from 1e-7 over the first
        # 10% of training, then linear annealing.
        "schedule": "linear",
        "warmup_fraction": 0.1,
        "warmup_initial_lr": 1e-7,
        "beta_2": 0.98,
        "decay_ssm_parameters": True,  # fairseq's Adam decays every weight
    }
    for task in LRA_TASKS + IMAGE_LIKE:
        for backbone in ETSMLP:
            settings = _training(task, backbone)
            assert settings["schedule"] == "linear"
            assert settings["warmup_fraction"] == 0.1
            assert settings["warmup_initial_lr"] == 1e-7
            assert settings["beta_2"] == 0.98
            assert not {"warmup_steps", "warmup_epochs"} & set(settings)
    # Batch size and epochs are not in Table 5: the S4 table's.
    text = _training("text", "etsmlp_gate")
    s4d = _training("text", "s4d")
    assert (text["batch_size"], text["epochs"]) == (
        s4d["batch_size"],
        s4d["epochs"],
    )
    mnist = _backbone("mnist", "etsmlp_gate")
    image = _backbone("image", "etsmlp_gate")
    mnist.pop("sequence_length"), image.pop("sequence_length")
    assert mnist == image
    with pytest.raises(ValueError, match="preset"):
        get_preset("s4d_listops_huge")


@pytest.mark.parametrize("backbone", ETSMLP)
@pytest.mark.parametrize("task", LRA_TASKS)
def test_etsmlp_paper_presets_build(task, backbone):
    # Full-size builds cost ~10 s each under JAX on a busy CPU: keep every
    # block setting and shrink only depth and width.
    model = SSMClassifier.from_preset(
        f"{backbone}_{task}_paper",
        num_layers=2,
        hidden_dim=16,
        sequence_length=LENGTH,
    )
    blocks = [
        layer
        for layer in model.backbone.layers
        if isinstance(layer, ETSMLPBlock)
    ]
    width, _, hidden, norm, *_ = TABLE_5[task]
    _, r_min, r_max, max_phase = REFERENCE[task]
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
    training = _training(task, "s4d")
    key, value = S4_WARMUP[task]
    assert training["schedule"] == "cosine"
    assert training[key] == value
    assert training.get("final_lr_fraction", 0.0) == 0.0


def _learning_rates(optimizer, steps):
    schedule = optimizer._learning_rate
    return np.array([float(to_numpy(schedule(s))) for s in steps])


def test_compiled_schedules_follow_the_presets():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10)])
    # ETSMLP ListOps: linear warm-up from 1e-7 over the first 10% (9000 of
    # 60 x 1500 = 90000 steps), linear decay to 0, Adam beta_2 0.98,
    # clipping at norm 1.
    recipe = training_recipe("etsmlp_listops_paper", steps_per_epoch=1500)
    optimizer = recipe["optimizer"]
    rates = _learning_rates(optimizer, [0, 4500, 9000, 49500, 90000])
    np.testing.assert_allclose(
        rates, [1e-7, 0.005 + 0.5e-7, 0.01, 0.005, 0.0], rtol=1e-5, atol=1e-9
    )
    assert rates[0] == pytest.approx(1e-7, rel=1e-5)
    assert optimizer.beta_2 == 0.98 and optimizer.clipnorm == 1.0
    assert optimizer.decay_ssm_parameters
    # S4D Retrieval: one epoch (here 100 steps) of warm-up, cosine to 0.
    training = _training("retrieval", "s4d")
    model.compile(optimizer=training_recipe(training, 100)["optimizer"])
    total = 100 * training["epochs"]
    rates = _learning_rates(model.optimizer, [50, 100, total])
    np.testing.assert_allclose(rates, [0.005, 0.01, 0.0], atol=1e-7)
    assert model.optimizer.beta_2 == 0.999 and model.optimizer.clipnorm is None
    assert not model.optimizer.decay_ssm_parameters
    # A smoke run shorter than the warm-up still compiles and trains.
    recipe = training_recipe("s4d_listops_paper", steps_per_epoch=2, epochs=1)
    model.compile(optimizer=recipe["optimizer"])
    assert _learning_rates(model.optimizer, [1])[0] == pytest.approx(0.01)


def test_warmup_fraction_and_initial_rate():
    base = {
        "learning_rate": 0.02,
        "weight_decay": 0.0,
        "batch_size": 8,
        "epochs": 4,
        "schedule": "cosine",
        "warmup_fraction": 0.25,
        "warmup_initial_lr": 1e-3,
    }
    # 4 epochs x 10 steps: a warm-up of 10 steps from 1e-3 to 0.02.
    optimizer = training_recipe(base, steps_per_epoch=10)["optimizer"]
    np.testing.assert_allclose(
        _learning_rates(optimizer, [0, 5, 10, 40]),
        [1e-3, 1e-3 + 0.5 * (0.02 - 1e-3), 0.02, 0.0],
        rtol=1e-5,
        atol=1e-9,
    )
    linear = dict(base, schedule="linear", warmup_fraction=0.5)
    optimizer = training_recipe(linear, steps_per_epoch=10)["optimizer"]
    np.testing.assert_allclose(
        _learning_rates(optimizer, [0, 10, 20, 30, 40]),
        [1e-3, 1e-3 + 0.5 * (0.02 - 1e-3), 0.02, 0.01, 0.0],
        rtol=1e-5,
        atol=1e-9,
    )


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"warmup_fraction": 1.0}, "`warmup_fraction`"),
        ({"warmup_fraction": -0.1}, "`warmup_fraction`"),
        ({"warmup_fraction": "10%"}, "`warmup_fraction`"),
        ({"warmup_fraction": 0.1, "warmup_steps": 5}, "warm-up's length"),
        ({"warmup_epochs": 1, "warmup_steps": 5}, "warm-up's length"),
        ({"warmup_steps": 2.5}, "`warmup_steps`"),
        ({"warmup_epochs": -1}, "`warmup_epochs`"),
        ({"warmup_initial_lr": -1e-7}, "`warmup_initial_lr`"),
        ({"warmup_initial_lr": 0.5}, "`warmup_initial_lr`"),
    ],
)
def test_bad_warmup_settings_raise(settings, match):
    training = {
        "learning_rate": 0.01,
        "weight_decay": 0.0,
        "batch_size": 8,
        "epochs": 2,
        **settings,
    }
    with pytest.raises(ValueError, match=match):
        training_recipe(training, steps_per_epoch=10)


def test_presets_follow_the_s4_table():
    listops = get_preset("s4d_listops_paper")
    backbone = listops["model"]["config"]["backbone"]
    assert (backbone["num_layers"], backbone["hidden_dim"]) == (8, 128)
    assert backbone["norm"] == "batch" and backbone["d_state"] == 64
    assert listops["training"]["batch_size"] == 50
    assert listops["training"]["weight_decay"] == 0.05
    assert listops["data"]["max_length"] == 2000
    pathx = get_preset("s4d_pathx_paper")["model"]["config"]["backbone"]
    assert pathx["block_kwargs"] == {"dt_min": 1e-4, "dt_max": 1e-2}
    assert pathx["sequence_length"] == 128 * 128
    cpu = _backbone("listops", "etsmlp_gate", "cpu")
    assert cpu["num_layers"] < backbone["num_layers"]


def test_listops_cpu_presets_share_the_main_job_budget():
    # The README's main job and the models measured beside it: the same
    # data, depth, width and schedule for every backbone.
    main = get_preset("s4d_listops_cpu")
    assert main["data"]["num_train"] == 16000
    backbone = main["model"]["config"]["backbone"]
    assert (backbone["num_layers"], backbone["hidden_dim"]) == (4, 128)
    assert (main["training"]["batch_size"], main["training"]["epochs"]) == (
        32,
        4,
    )
    assert main["training"]["learning_rate"] == 0.006
    for model in ("etsmlp", "etsmlp_gate", "mamba", "mamba2", "transformer"):
        other = get_preset(f"{model}_listops_cpu")
        assert other["data"] == main["data"]
        config = other["model"]["config"]["backbone"]
        assert (config["num_layers"], config["hidden_dim"]) == (4, 128)
        for key in ("batch_size", "epochs", "schedule"):
            assert other["training"][key] == main["training"][key]
    for name in list_presets():
        assert get_preset(name)["source"]


def test_every_cli_configuration_is_a_preset():
    from applications.forecasting.experiment import MODELS
    from applications.forecasting.experiment import ForecastConfig
    from applications.lra import tasks

    names = set(list_presets())
    for task in tasks.TASKS:
        for backbone in tasks.BACKBONES:
            for size in tasks.PRESET_SIZES:
                assert tasks.preset_name(task, backbone, size) in names
    for data in ("etth1", "etth2", "ettm1", "ettm2"):
        for model in MODELS:
            assert {f"{model}_{data}_cpu", f"{model}_{data}_base"} <= names
    # The forecasting CLI's defaults are the `base` presets.
    defaults = ForecastConfig()
    base = get_preset("s4d_etth1_base")
    backbone = base["model"]["config"]["backbone"]
    assert base["data"]["input_size"] == defaults.input_size
    assert backbone["hidden_dim"] == defaults.hidden_dim
    assert backbone["d_state"] == defaults.d_state
    assert backbone["num_layers"] == defaults.num_layers
    assert base["training"]["learning_rate"] == defaults.learning_rate
    assert base["training"]["epochs"] == defaults.epochs


def _one_preset_per_scaled_down_model():
    """Presets that differ only in what the scaled-down build below
    overrides (depth, width, length) or outside the model (training, data,
    source) build the same model: one name of each such group."""
    names = {}
    for name in list_presets():
        model = copy.deepcopy(get_preset(name)["model"])
        config = model["config"].get("backbone", model["config"])
        for key in ("num_layers", "hidden_dim", "sequence_length"):
            config.pop(key, None)
        if "backbone" not in model["config"]:
            config.pop("input_size", None)
        names.setdefault(json.dumps(model, sort_keys=True), name)
    return sorted(names.values())


@pytest.mark.parametrize("name", _one_preset_per_scaled_down_model())
def test_every_preset_builds(name):
    """Each preset builds (scaled down: one block of width 8, 16 steps)."""
    from keras_ssm.models import from_preset

    entry = get_preset(name)
    if "backbone" in entry["model"]["config"]:
        overrides = {"sequence_length": None}
        block_type = entry["model"]["config"]["backbone"]["block_type"]
        if block_type == "mamba2":
            # Width 8 -> an inner width of 16: heads of 8.
            overrides["block_kwargs"] = {"headdim": 8}
        if block_type == "transformer":
            # Its position embedding needs a length (None is honoured).
            overrides["sequence_length"] = LENGTH
        model = from_preset(name, num_layers=1, hidden_dim=8, **overrides)
        assert model.backbone.sequence_length == overrides["sequence_length"]
        if entry["model"]["class"] == "SSMClassifier":
            config = entry["model"]["config"]["backbone"]
            assert model.backbone.block_type == config["block_type"]
            assert model.num_classes == entry["model"]["config"]["num_classes"]
    else:
        model = from_preset(name, hidden_dim=8, num_layers=1, input_size=16)
    assert model.count_params() > 0


def test_from_preset_loads_weights_and_round_trips(tmp_path):
    model = SSMClassifier.from_preset("s4d_listops_cpu", num_layers=1)
    tokens = np.random.default_rng(0).integers(1, 17, (2, 64)).astype("int32")
    path = str(tmp_path / "listops.weights.h5")
    model.save_weights(path)
    restored = SSMClassifier.from_preset(
        "s4d_listops_cpu", weights=path, num_layers=1
    )
    np.testing.assert_allclose(
        to_numpy(restored(tokens)), to_numpy(model(tokens)), atol=1e-6
    )
    with pytest.raises(ValueError, match="SSMForecaster"):
        SSMClassifier.from_preset("s4d_etth1_cpu")


# SHA-256 of the registry's canonical JSON (sorted keys, no spaces).
EXPANDED_REGISTRY_SHA256 = (
    "78fc09b93f7e3ad2433093932b2d46fa3cf97b3009f55e8b23fa876a4a7e20c4"
)
# The same as it stood when it was one 7,060-line file of expanded entries,
# before the forecasting baselines' `num_inputs` became `input_features`:
# renamed back, the registry must give exactly these values.
EXPANDED_REGISTRY_SHA256_BEFORE_RENAMES = (
    "b35cdc2bf6ef49badc6cd3a7428ef9a2b3437fee2535815bfa35e909faab887f"
)


def _registry_sha256(registry):
    import hashlib

    canonical = json.dumps(registry, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_the_compact_registry_expands_to_the_pinned_values():
    import copy

    from keras_ssm import presets

    registry = presets._registry()
    assert _registry_sha256(registry) == EXPANDED_REGISTRY_SHA256
    before = copy.deepcopy(registry)
    renamed = 0
    for entry in before.values():
        config = entry["model"]["config"]
        if "input_features" in config:
            config["num_inputs"] = config.pop("input_features")
            renamed += 1
    assert renamed == 16
    assert _registry_sha256(before) == EXPANDED_REGISTRY_SHA256_BEFORE_RENAMES
    assert len(registry) == 176
    # Entries are independent copies: editing one changes no other.
    a, b = get_preset("s4d_etth1_cpu"), get_preset("mamba_etth1_cpu")
    a["training"]["epochs"] = 99
    assert b["training"]["epochs"] != 99
    assert get_preset("s4d_etth1_cpu")["training"]["epochs"] != 99


def test_an_undefined_registry_reference_is_named():
    from keras_ssm import presets

    compact = {
        "training": {},
        "data": {"d": {}},
        "sources": {},
        "presets": {
            "p": {
                "task": "t",
                "class": "C",
                "config": {},
                "training": "missing",
                "data": "d",
                "source": "s",
            }
        },
    }
    with pytest.raises(ValueError, match="'p'.*training 'missing'"):
        presets.expand(compact)
