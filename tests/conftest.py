"""Test set-up shared by every test module.

torch is imported first: importing tensorflow before torch segfaults when
both load in one process (keras-hub imports tensorflow under every
backend). TensorFlow itself is left to load when a test needs it, which
keeps its start-up (seconds) out of the JAX and PyTorch runs' collection.
"""

import os

import torch  # noqa: F401  (import order: torch before tensorflow)

# isort: split
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

# tests/run_all_backends.py sets this for every backend after the first: the
# tests marked `backend_independent` then run once per suite, not per backend.
SKIP_BACKEND_INDEPENDENT = "KERAS_SSM_SKIP_BACKEND_INDEPENDENT"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "backend_independent: the result cannot depend on the Keras backend "
        "(NumPy data, files, argument parsing, tables); "
        "tests/run_all_backends.py runs it under its first backend only",
    )


def pytest_collection_modifyitems(config, items):
    """Deselects the backend-independent tests when asked to."""
    if os.environ.get(SKIP_BACKEND_INDEPENDENT) != "1":
        return
    kept, dropped = [], []
    for item in items:
        independent = item.get_closest_marker("backend_independent")
        (dropped if independent else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


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
