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

# The library has no default data directory: it reads hand-placed copies
# only from $KERAS_SSM_DATA. In a checkout with the shared data beside it,
# the tests (and the CLIs they start) read that copy unless told otherwise.
_SHARED_DATA = os.path.abspath(
    os.path.join(
        os.path.dirname(__file__), os.pardir, os.pardir, "shared", "data"
    )
)
if not os.environ.get("KERAS_SSM_DATA") and os.path.isdir(_SHARED_DATA):
    os.environ["KERAS_SSM_DATA"] = _SHARED_DATA

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
    return os.path.abspath(os.environ.get("KERAS_SSM_DATA") or _SHARED_DATA)
