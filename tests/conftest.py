"""Test set-up shared by every test module.

torch is imported before tensorflow: the other order segfaults when both
load in one process (keras-hub imports tensorflow under every backend).
"""

import os

import torch  # noqa: F401  (import order: torch before tensorflow)

try:  # TensorFlow is optional under the other backends.
    import tensorflow  # noqa: F401
except ImportError:  # pragma: no cover
    pass

import keras
import numpy as np
import pytest

BACKENDS = ("jax", "tensorflow", "torch")


@pytest.fixture(autouse=True)
def _seed_and_policy():
    """Fresh seeds and the float32 policy around every test."""
    keras.utils.set_random_seed(0)
    np.random.seed(0)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def backend():
    return keras.backend.backend()


def shared_data_dir():
    """Directory of the data sets that sit beside the repository."""
    default = os.path.join(
        os.path.dirname(__file__), os.pardir, os.pardir, "shared", "data"
    )
    return os.path.abspath(os.environ.get("KERAS_SSM_DATA", default))
