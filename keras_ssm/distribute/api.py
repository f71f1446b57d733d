"""One entry point for data parallelism on every backend.

* `initialize()` joins the other processes when a launcher started several
  (torchrun, `JAX_*` variables, `TF_CONFIG`; see `environment`), and does
  nothing in a lone process.
* `data_parallel_scope()` is the context to build, compile and fit in.
  Alone, it spreads over the local devices (JAX `DataParallel`,
  TensorFlow `MirroredStrategy`); across processes, it uses JAX
  `DataParallel` over every process' devices, TensorFlow
  `MultiWorkerMirroredStrategy`, or the torch process group.
* `prepare_model(model)` makes the model's `fit` and `evaluate` feed each
  process its part of every global batch where the backend needs it
  (PyTorch, JAX); a no-op otherwise.
* `is_chief()` is True in the one process that should write checkpoints,
  logs and results.
"""

import contextlib

import keras

from keras_ssm.distribute import environment
from keras_ssm.distribute import local

DEFAULT_TIMEOUT_SECONDS = 300


def process_index():
    """This process' index among the processes of the run (0 when alone)."""
    return environment.process_layout()[0]


def process_count():
    """The number of processes of the run (1 when alone)."""
    return environment.process_layout()[1]


def is_chief():
    """True in process 0, the one that writes checkpoints, logs, results.

    Example:

    >>> is_chief() if process_count() == 1 else True
    True
    """
    return process_index() == 0


def initialize(timeout_seconds=DEFAULT_TIMEOUT_SECONDS):
    """Joins the other processes of the run; a no-op when alone.

    Call it on every process, early: JAX and TensorFlow must set up their
    cross-process communication before their first computation.

    Args:
        timeout_seconds: how long communication waits for the other
            processes before failing with an error (a dead process then
            stops the run instead of hanging it).

    Returns:
        `(process_index, process_count)`.
    """
    index, count = environment.process_layout()
    if count == 1:
        return index, count
    backend = keras.backend.backend()
    if backend == "torch":
        from keras_ssm.distribute import torch_data_parallel

        return torch_data_parallel.initialize(timeout_seconds)
    if backend == "jax":
        from keras_ssm.distribute import jax_data_parallel

        return jax_data_parallel.initialize(timeout_seconds=timeout_seconds)
    from keras_ssm.distribute import tf_data_parallel

    tf_data_parallel.strategy(timeout_seconds)
    return index, count


@contextlib.contextmanager
def data_parallel_scope(enabled=True, num_devices=None):
    """Context manager: build, compile and fit inside it to train in parallel.

    Alone (no multi-process launcher variables), this is
    `local.data_parallel`: all local devices of JAX or TensorFlow, and an
    explanatory error on PyTorch (which needs one process per device).
    Across processes it calls `initialize()` and yields the JAX
    `DataParallel`, the TensorFlow `MultiWorkerMirroredStrategy`, or None on
    PyTorch (where `prepare_model` does the work). The batch size given to
    `fit` stays the global batch in every case.

    Args:
        enabled: if False, a no-op (so CLIs can pass their flag through).
        num_devices: local devices to use in a lone process (None: all);
            multi-process runs use every device of every process.

    Yields:
        The distribution or strategy in use, or None.

    Example:

    ```python
    from keras_ssm import distribute

    distribute.initialize()
    with distribute.data_parallel_scope():
        model = build_model()
        model.compile(optimizer="adam", loss="mse")
        distribute.prepare_model(model)
        model.fit(x, y, batch_size=64)  # 64 samples per step, all devices
    if distribute.is_chief():
        model.save("model.keras")
    ```
    """
    if not enabled:
        yield None
        return
    if not environment.is_multi_process():
        with local.data_parallel(num_devices=num_devices) as strategy:
            yield strategy
        return
    if num_devices is not None:
        raise ValueError(
            "`num_devices` applies to one process; a multi-process run uses "
            f"every device of every process. Got num_devices={num_devices!r}."
        )
    initialize()
    backend = keras.backend.backend()
    if backend == "torch":
        yield None
    elif backend == "jax":
        from keras_ssm.distribute import jax_data_parallel

        distribution = jax_data_parallel.distribution()
        with distribution.scope():
            yield distribution
    else:
        from keras_ssm.distribute import tf_data_parallel

        strategy = tf_data_parallel.strategy()
        with strategy.scope():
            yield strategy


def prepare_model(model):
    """Adapts `model` to the multi-process run; a no-op when alone.

    * PyTorch: see `torch_data_parallel.prepare_model` (broadcast of rank
      0's weights, this rank's slice of each global batch, gradients
      averaged over ranks before the optimizer, epoch logs averaged).
    * JAX: `fit` and `evaluate` feed this process its part of each global
      batch (`sharding.ShardedBatches`) for arrays and `PyDataset`s.
    * TensorFlow: `MultiWorkerMirroredStrategy` splits the data itself;
      see `tf_data_parallel.prepare_model` for the one adjustment.

    Args:
        model: a Keras model, built in `data_parallel_scope()`.

    Returns:
        The same model.
    """
    index, count = environment.process_layout()
    if count == 1:
        return model
    backend = keras.backend.backend()
    if backend == "torch":
        from keras_ssm.distribute import torch_data_parallel

        initialize()
        return torch_data_parallel.prepare_model(model)
    if backend == "jax":
        from keras_ssm.distribute import jax_data_parallel

        return jax_data_parallel.prepare_model(model, index, count)
    from keras_ssm.distribute import tf_data_parallel

    return tf_data_parallel.prepare_model(model)
