"""Chooses the Keras backend from the command line before Keras loads."""

import os
import sys

from applications.common.arguments import BACKENDS
from applications.common.console import import_keras_quietly
from applications.common.errors import UsageError


def _backend_from_argv(argv):
    """The value of `--backend X` / `--backend=X` in `argv`, or None."""
    for i, arg in enumerate(argv):
        if arg == "--backend":
            if i + 1 >= len(argv):
                raise UsageError(
                    f"argument --backend: expected one of {BACKENDS}."
                )
            return argv[i + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return None


def select_backend(argv=None, default=None):
    """Sets `KERAS_BACKEND` from `--backend` before Keras is imported.

    Precedence: `--backend` on the command line, then the `KERAS_BACKEND`
    environment variable, then `default`, then Keras' own default. Only the
    chosen backend's framework is imported.

    Args:
        argv: the command-line arguments (defaults to `sys.argv[1:]`).
        default: backend to use when neither the flag nor the environment
            variable names one.

    Returns:
        The backend name that Keras will use (or None for Keras' default).

    Raises:
        UsageError: for an unknown backend name (a `ValueError`).
        RuntimeError: when Keras is already imported with another backend.

    Example:

    >>> select_backend(["--backend", "torch"])
    'torch'
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    flag = _backend_from_argv(argv)
    name = flag or os.environ.get("KERAS_BACKEND") or default
    if name is None:
        import_keras_quietly()
        return None
    if name not in BACKENDS:
        source = "argument --backend" if flag else "KERAS_BACKEND"
        raise UsageError(
            f"{source}: invalid choice {name!r} (choose from "
            f"{', '.join(BACKENDS)})."
        )
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise RuntimeError(
                f"Keras is already imported with the {current!r} backend; "
                f"the backend {name!r} must be selected before importing "
                "keras (the backend is fixed per process)."
            )
    os.environ["KERAS_BACKEND"] = name
    if name == "torch":
        # Before any TensorFlow import (keras-hub's, for the Transformer
        # block): the other order crashes some builds.
        import torch  # noqa: F401
    import_keras_quietly()
    if name != "tensorflow":
        keep_tensorflow_out()
    return name


def keep_tensorflow_out():
    """Stops Keras from importing an installed TensorFlow it does not use.

    Keras (3.x) imports TensorFlow, when installed, the first time it
    checks for `tf.data` objects or TensorShapes: on `set_random_seed`, on
    every `get_config` and in its data adapters, under every backend. That
    costs seconds and hundreds of MB per process, and its start-up notices
    on every rank. The command lines feed NumPy arrays and `PyDataset`s, so
    under JAX and PyTorch they tell Keras that TensorFlow is absent. A
    no-op when TensorFlow is already imported or Keras has no such switch.
    """
    if "tensorflow" in sys.modules:
        return
    try:
        from keras.src.utils import module_utils
    except ImportError:
        return
    lazy = getattr(module_utils, "tensorflow", None)
    if lazy is not None and getattr(lazy, "_available", False) is None:
        lazy._available = False
