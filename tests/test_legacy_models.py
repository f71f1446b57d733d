"""Models saved by keras-ssm 0.1.0 keep loading and computing the same.

`tests/data/legacy_v0_1_0.keras` was written by keras-ssm 0.1.0 (JAX) and
holds every layer with its 0.1.0 arguments (e.g. `ETSMLPBlock(hidden_dim=)`)
and an `ssm_adamw` optimizer; `legacy_v0_1_0_io.npz` holds an input batch
and the outputs that version computed for it.
"""

import os

import keras
import numpy as np
import pytest

import keras_ssm  # noqa: F401  (registers the layers for loading)
from tests.helpers import to_numpy

DATA = os.path.join(os.path.dirname(__file__), "data")


def test_model_saved_by_0_1_0_loads_and_matches():
    path = os.path.join(DATA, "legacy_v0_1_0.keras")
    reference = np.load(os.path.join(DATA, "legacy_v0_1_0_io.npz"))
    model = keras.saving.load_model(path)
    outputs = to_numpy(model(reference["inputs"], training=False))
    np.testing.assert_allclose(
        outputs, reference["outputs"], rtol=1e-4, atol=1e-4
    )


def test_model_saved_by_0_1_0_keeps_training():
    model = keras.saving.load_model(os.path.join(DATA, "legacy_v0_1_0.keras"))
    reference = np.load(os.path.join(DATA, "legacy_v0_1_0_io.npz"))
    # The file was saved under JAX with jit_compile=True, which PyTorch
    # would read as torch.compile (minutes on CPU): recompile with the
    # restored optimizer and each backend's default.
    model.compile(optimizer=model.optimizer, loss="mse")
    history = model.fit(
        reference["inputs"],
        np.zeros_like(reference["outputs"]),
        epochs=1,
        verbose=0,
    )
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("name", ["blocks", "classifier", "forecaster"])
def test_model_saved_before_0_2_loads_and_matches(name):
    """Models saved just before the 0.2.0 block redesign (see
    `tests/data/make_legacy_pre_0_2.py`) load with the same outputs."""
    reference = np.load(os.path.join(DATA, "legacy_pre_0_2_io.npz"))
    model = keras.saving.load_model(
        os.path.join(DATA, f"legacy_pre_0_2_{name}.keras")
    )
    outputs = to_numpy(model(reference[f"{name}_inputs"], training=False))
    np.testing.assert_allclose(
        outputs, reference[f"{name}_outputs"], rtol=1e-4, atol=1e-5
    )


def test_old_argument_names_in_saved_configs_load_with_a_warning():
    """The classifier saved before 0.2.0 names its retrieval-head width
    `hidden_dim`, now `head_intermediate_dim` (the README's "Vocabulary")."""
    renamed = (
        "`hidden_dim` of SSMClassifier is deprecated: use "
        "`head_intermediate_dim`"
    )
    with pytest.warns(DeprecationWarning, match=renamed):
        model = keras.saving.load_model(
            os.path.join(DATA, "legacy_pre_0_2_classifier.keras")
        )
    assert model.head_intermediate_dim == model.backbone.hidden_dim == 8
    assert "hidden_dim" not in model.get_config()
