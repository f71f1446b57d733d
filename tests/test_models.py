"""keras_ssm.models: every block type builds and trains, masks, saving."""

import keras
import numpy as np
import pytest

from keras_ssm.layers.base import is_ssm_parameter
from keras_ssm.models import BLOCK_TYPES
from keras_ssm.models import InformerForecaster
from keras_ssm.models import SSMBackbone
from keras_ssm.models import SSMClassifier
from keras_ssm.models import SSMForecaster
from keras_ssm.models import TransformerForecaster
from tests.helpers import assert_save_load_roundtrip
from tests.helpers import to_numpy

LENGTH = 16
BLOCK = {
    "s4d": {"d_state": 4, "bidirectional": True},
    "etsmlp": {"intermediate_dim": 16, "bidirectional": True},
    "etsmlp_gate": {"intermediate_dim": 16, "bidirectional": True},
    "mamba": {"d_state": 4, "expand": 2, "bidirectional": True},
    "mamba2": {
        "d_state": 4,
        "expand": 2,
        "bidirectional": True,
        "block_kwargs": {"headdim": 4},
    },
    "transformer": {"num_heads": 2},
}
# XLA compilation costs more than it saves for a few tiny TF steps.
JIT_COMPILE = False if keras.backend.backend() == "tensorflow" else "auto"


def _backbone(block_type, ids=True, length=LENGTH, **overrides):
    inputs = {"vocabulary_size": 17} if ids else {"input_features": 3}
    return SSMBackbone(
        block_type,
        num_layers=1,
        hidden_dim=8,
        sequence_length=length,
        **inputs,
        **{**BLOCK[block_type], **overrides},
    )


def _tokens(batch_size=4, length=LENGTH, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, 15, size=(batch_size, length)).astype("int32")
    tokens[:, length // 2 + 1 :] = 0  # padding at the end
    tokens[0, 3:] = 0
    return tokens


def _values(batch_size=4, length=LENGTH, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch_size, length, 3)).astype("float32")


def _train_one_step(block_type, ids):
    model = SSMClassifier(_backbone(block_type, ids), num_classes=10)
    model.compile_from_preset(
        f"{block_type}_listops_cpu",
        steps_per_epoch=2,
        epochs=1,
        jit_compile=JIT_COMPILE,
    )
    x = _tokens() if ids else _values()
    y = np.arange(4) % 10
    before = [to_numpy(w) for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [to_numpy(w) for w in model.trainable_weights]
    changed = sum(not np.allclose(a, b) for a, b in zip(before, after))
    assert changed >= len(before) // 2
    logits = to_numpy(model(x))
    assert logits.shape == (4, 10) and np.all(np.isfinite(logits))


# Two block types run in the quick set on each input kind; the others are
# marked slow (each compiles a training step).
_QUICK = ("s4d", "etsmlp_gate")


@pytest.mark.parametrize(
    "block_type",
    [
        t if t in _QUICK else pytest.param(t, marks=pytest.mark.slow)
        for t in BLOCK_TYPES
    ],
)
@pytest.mark.parametrize("ids", [True, False], ids=["ids", "values"])
def test_each_block_type_trains_one_step(block_type, ids):
    _train_one_step(block_type, ids)


@pytest.mark.parametrize(
    "block_type", ["s4d", "etsmlp_gate", "mamba", "mamba2"]
)
def test_padding_does_not_change_outputs_at_valid_steps(block_type):
    """Masked blocks ignore the padded steps (the backbone's outputs)."""
    short = _backbone(block_type, length=LENGTH)
    long = _backbone(block_type, length=LENGTH + 8)
    long.set_weights(short.get_weights())
    tokens = _tokens()
    padded = np.pad(tokens, ((0, 0), (0, 8)))
    valid = tokens != 0
    expected = to_numpy(short(tokens))[valid]
    actual = to_numpy(long(padded))[:, :LENGTH][valid]
    np.testing.assert_allclose(actual, expected, atol=2e-5)
    # ... and so the pooled classifier's predictions.
    head = SSMClassifier(short, num_classes=3)
    other = SSMClassifier(long, num_classes=3)
    other.get_layer("logits").set_weights(
        head.get_layer("logits").get_weights()
    )
    np.testing.assert_allclose(
        to_numpy(other(padded)), to_numpy(head(tokens)), atol=2e-5
    )


def test_retrieval_uses_the_matching_head():
    model = SSMClassifier(_backbone("s4d"), num_classes=2, retrieval=True)
    features = model.get_layer("matching_features")
    assert features.output.shape[-1] == 4 * 8
    x = [_tokens(), _tokens(seed=1)]
    swapped = to_numpy(model([x[1], x[0]]))
    # u - v changes sign when the documents swap: not a symmetric head.
    assert not np.allclose(swapped, to_numpy(model(x)))


def test_max_pooling_ignores_padding():
    backbone = _backbone("s4d")
    model = SSMClassifier(backbone, num_classes=2, pooling="max")
    tokens = _tokens()
    features = to_numpy(backbone(tokens))
    features[tokens == 0] = -np.inf
    pooled = features.max(axis=1)
    logits = model.get_layer("logits")
    kernel, bias = (to_numpy(w) for w in logits.weights)
    np.testing.assert_allclose(
        to_numpy(model(tokens)), pooled @ kernel + bias, atol=1e-5
    )


def test_lipschitz_option_adds_the_penalty():
    backbone = _backbone("s4d", lipschitz_weight=0.5)
    assert backbone.get_layer("lipschitz").weight == pytest.approx(0.5)
    model = SSMClassifier(backbone, num_classes=10)
    model(_tokens())
    assert len(model.losses) == 1 and float(to_numpy(model.losses[0])) > 0
    plain = _backbone("s4d")
    assert "lipschitz" not in [layer.name for layer in plain.layers]


def _forecaster():
    backbone = SSMBackbone(
        "s4d", num_layers=1, hidden_dim=8, input_features=3, d_state=4
    )
    return SSMForecaster(backbone, input_size=LENGTH, horizon=4,
                         target_columns=[0, 2])  # fmt: skip


@pytest.mark.parametrize(
    "build",
    ["backbone", "classifier", "retrieval", "forecaster"],
)
def test_keras_round_trip_is_identical(build, tmp_path):
    if build == "backbone":
        model, x = _backbone("etsmlp_gate"), _tokens()
    elif build == "classifier":
        model = SSMClassifier(_backbone("s4d", lipschitz_weight=0.1), 10)
        x = _tokens()
    elif build == "retrieval":
        model = SSMClassifier(_backbone("s4d"), 2, retrieval=True)
        x = [_tokens(), _tokens(seed=1)]
    else:
        model, x = _forecaster(), _values()
    restored = assert_save_load_roundtrip(model, x, tmp_path)
    assert type(restored) is type(model)
    assert restored.get_config() == model.get_config()


@pytest.mark.slow
@pytest.mark.parametrize("cls", [TransformerForecaster, InformerForecaster])
def test_baseline_forecasters_round_trip(cls, tmp_path):
    model = cls(input_size=LENGTH, horizon=4, input_features=3, hidden_dim=8,
                num_layers=2, target_columns=[1])  # fmt: skip
    assert model.output_shape == (None, 4, 1)
    assert_save_load_roundtrip(model, _values(), tmp_path)


def test_ssm_parameters_get_no_weight_decay():
    model = SSMClassifier(_backbone("s4d"), num_classes=10)
    model.compile_from_preset("s4d_listops_paper", steps_per_epoch=10)
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


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="block_type"):
        SSMBackbone("rnn", vocabulary_size=5)
    with pytest.raises(ValueError, match="num_layers"):
        SSMBackbone("s4d", num_layers=0, vocabulary_size=5)
    with pytest.raises(ValueError, match="vocabulary_size"):
        SSMBackbone("s4d")
    with pytest.raises(ValueError, match="d_state"):
        SSMBackbone("etsmlp", vocabulary_size=5, d_state=4)
    with pytest.raises(ValueError, match="sequence_length"):
        SSMBackbone("transformer", vocabulary_size=5)
    with pytest.raises(ValueError, match="pooling"):
        SSMClassifier(_backbone("s4d"), 2, pooling="median")
    with pytest.raises(ValueError, match="num_classes"):
        SSMClassifier(_backbone("s4d"), 1)
    with pytest.raises(ValueError, match="values"):
        SSMForecaster(_backbone("s4d"), input_size=LENGTH, horizon=2)
    with pytest.raises(ValueError, match="target_columns"):
        SSMForecaster(
            _backbone("s4d", ids=False), LENGTH, 2, target_columns=[3]
        )


def test_empty_batches_are_refused_by_name():
    # Without the check, each backend fails with its own internal error
    # (Keras's predict loop everywhere, the kernels on JAX).
    models = {
        "classifier": (
            SSMClassifier(_backbone("s4d"), num_classes=10),
            np.zeros((0, LENGTH), "int32"),
        ),
        "forecaster": (
            SSMForecaster(_backbone("s4d", ids=False), LENGTH, horizon=2),
            np.zeros((0, LENGTH, 3), "float32"),
        ),
        "baseline": (
            TransformerForecaster(
                input_size=LENGTH, horizon=2, input_features=3, hidden_dim=8
            ),
            np.zeros((0, LENGTH, 3), "float32"),
        ),
    }
    for name, (model, empty) in models.items():
        model.compile(loss="mse")
        with pytest.raises(ValueError, match="`inputs` holds no examples"):
            model(empty)
        with pytest.raises(ValueError, match="`x` holds no examples"):
            model.predict(empty, verbose=0)
        with pytest.raises(ValueError, match="`x` holds no examples"):
            model.predict_on_batch(empty)
        with pytest.raises(ValueError, match="`x` holds no examples"):
            model.evaluate(empty, np.zeros((0, 1)), verbose=0)
        with pytest.raises(ValueError, match="`x` holds no examples"):
            model.fit(empty, np.zeros((0, 1)), verbose=0)
        one = np.zeros((1,) + empty.shape[1:], empty.dtype)
        assert to_numpy(model.predict(one, verbose=0)).shape[0] == 1


def test_classifier_accepts_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = SSMClassifier(_backbone("s4d"), num_classes=10)
    logits = model(_tokens())
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.all(np.isfinite(to_numpy(logits)))


# (builder, current name, deprecated name, value): see the README's
# "Vocabulary".
RENAMED = {
    "transformer": (
        lambda **kw: TransformerForecaster(
            input_size=LENGTH, horizon=2, hidden_dim=8, num_layers=1, **kw
        ),
        "input_features",
        "num_inputs",
        3,
    ),
    "informer": (
        lambda **kw: InformerForecaster(
            input_size=LENGTH, horizon=2, hidden_dim=8, num_layers=1, **kw
        ),
        "input_features",
        "num_inputs",
        3,
    ),
    "classifier": (
        lambda **kw: SSMClassifier(
            _backbone("s4d", name="backbone"), 2, retrieval=True, **kw
        ),
        "head_intermediate_dim",
        "hidden_dim",
        6,
    ),
}


@pytest.mark.parametrize("case", sorted(RENAMED))
def test_renamed_arguments_keep_working_under_their_old_names(case):
    build, new, old, value = RENAMED[case]
    model = build(name="m", **{new: value})
    config = model.get_config()
    assert config[new] == value and old not in config
    warning = f"`{old}` of {type(model).__name__} is deprecated: use `{new}`"
    with pytest.warns(DeprecationWarning, match=warning):
        legacy = build(name="m", **{old: value})
    assert legacy.get_config() == config
    assert legacy.count_params() == model.count_params()
    # A config saved before the rename loads into the same model.
    saved = {**config, old: config[new]}
    del saved[new]
    with pytest.warns(DeprecationWarning, match=warning):
        restored = type(model).from_config(saved)
    assert restored.get_config() == config
    with pytest.raises(ValueError, match=f"both `{new}`.*name `{old}`"):
        build(**{new: value, old: value})


def test_the_classifier_head_width_is_not_the_model_width():
    model = SSMClassifier(
        _backbone("s4d"), 2, retrieval=True, head_intermediate_dim=6
    )
    assert model.backbone.hidden_dim == 8
    assert tuple(model.get_layer("mlp").kernel.shape) == (4 * 8, 6)
    default = SSMClassifier(_backbone("s4d"), 2, retrieval=True)
    assert default.head_intermediate_dim == 8
