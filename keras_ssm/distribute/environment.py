"""Which process am I? Reads the launcher's environment, per backend.

Each backend has its own launcher convention, and keras-ssm follows it rather
than inventing one:

* PyTorch: `torchrun` sets `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
  `MASTER_ADDR` and `MASTER_PORT` in every process it starts.
* JAX: `JAX_COORDINATOR_ADDRESS` (`host:port` of process 0),
  `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID`, the arguments of
  `jax.distributed.initialize`.
* TensorFlow: `TF_CONFIG`, the JSON cluster description read by
  `tf.distribute.MultiWorkerMirroredStrategy`.

Nothing here starts communication; it only answers questions about the
environment, so it is safe to call before the backend is initialised.
"""

import json
import os

import keras

JAX_VARIABLES = (
    "JAX_COORDINATOR_ADDRESS",
    "JAX_NUM_PROCESSES",
    "JAX_PROCESS_ID",
)


def _int_variable(name):
    value = os.environ.get(name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"The environment variable {name} must be an integer; got "
            f"{value!r}."
        ) from None


def _tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            "TF_CONFIG must be JSON like {'cluster': {'worker': "
            "['host:port', ...]}, 'task': {'type': 'worker', 'index': 0}}; "
            f"got {raw!r} ({error})."
        ) from None
    if task.get("type", "worker") != "worker":
        raise ValueError(
            "Only 'worker' tasks are supported in TF_CONFIG (every process "
            f"trains); got task type {task.get('type')!r}."
        )
    return len(workers), index


def process_layout(backend=None):
    """`(process_index, process_count)` from the launcher's environment.

    Args:
        backend: `"jax"`, `"tensorflow"` or `"torch"`; defaults to the Keras
            backend.

    Returns:
        A tuple `(index, count)`; `(0, 1)` when no multi-process launcher
        variables are set.

    Raises:
        ValueError: when the variables are set but malformed or
            inconsistent.

    Example:

    >>> process_layout("torch") if "WORLD_SIZE" not in os.environ else (0, 1)
    (0, 1)
    """
    backend = backend or keras.backend.backend()
    if backend == "torch":
        if "WORLD_SIZE" not in os.environ:
            return 0, 1
        count, index = _int_variable("WORLD_SIZE"), _int_variable("RANK")
    elif backend == "jax":
        present = [name for name in JAX_VARIABLES if name in os.environ]
        if not present:
            return 0, 1
        if len(present) != len(JAX_VARIABLES):
            raise ValueError(
                f"Set all of {JAX_VARIABLES} for multi-process JAX; only "
                f"{present} are set."
            )
        count = _int_variable("JAX_NUM_PROCESSES")
        index = _int_variable("JAX_PROCESS_ID")
    elif backend == "tensorflow":
        layout = _tf_config()
        if layout is None:
            return 0, 1
        count, index = layout
    else:
        raise ValueError(f"Unknown backend {backend!r}.")
    if count < 1 or not 0 <= index < count:
        raise ValueError(
            f"The process index must be in [0, {count}); got index {index} "
            f"of {count} processes."
        )
    return index, count


def is_multi_process(backend=None):
    """True when a launcher started this process as one of several."""
    return process_layout(backend)[1] > 1
