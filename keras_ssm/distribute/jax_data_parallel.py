"""Multi-process data parallelism for the JAX backend.

`jax.distributed.initialize` connects the processes (process 0 runs the
coordinator); afterwards `jax.devices()` lists the devices of *all*
processes, and `keras.distribution.DataParallel` over them averages the
gradients with XLA collectives. On CPU those collectives go through gloo
(`jax_cpu_collectives_implementation`, set before initialising).

Each process must feed its own part of every global batch (Keras builds the
global array from the processes' local parts with
`jax.make_array_from_process_local_data`); `keras_ssm.distribute.
shard_batches` does that for arrays and `PyDataset`s.
"""

import os

import keras

from keras_ssm.distribute import environment

DEFAULT_TIMEOUT_SECONDS = 300


def initialize(
    coordinator_address=None,
    num_processes=None,
    process_id=None,
    timeout_seconds=DEFAULT_TIMEOUT_SECONDS,
):
    """Connects this JAX process to the others; a no-op when alone.

    Arguments left as None are read from `JAX_COORDINATOR_ADDRESS`,
    `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID`. Must run before JAX's first
    computation.

    Args:
        coordinator_address: `"host:port"` where process 0 listens.
        num_processes: the number of processes.
        process_id: this process' index in `[0, num_processes)`.
        timeout_seconds: how long to wait for the others to join, and after
            how long without a heartbeat a process counts as dead.

    Returns:
        `(process_id, num_processes)`.
    """
    import jax

    if num_processes is None and process_id is None:
        process_id, num_processes = environment.process_layout("jax")
    if num_processes is None or process_id is None:
        raise ValueError(
            "Give both `num_processes` and `process_id` (or neither, to read "
            "them from the environment)."
        )
    if num_processes == 1:
        return 0, 1
    if _already_initialized():
        return jax.process_index(), jax.process_count()
    coordinator_address = coordinator_address or os.environ.get(
        "JAX_COORDINATOR_ADDRESS"
    )
    if not coordinator_address:
        raise ValueError(
            "Multi-process JAX needs the coordinator's address (`host:port` "
            "of process 0): pass `coordinator_address` or set "
            "JAX_COORDINATOR_ADDRESS."
        )
    # Cross-process collectives on CPU (gloo); harmless on accelerators.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    timeout = int(timeout_seconds)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=int(num_processes),
        process_id=int(process_id),
        initialization_timeout=timeout,
        heartbeat_timeout_seconds=max(10, timeout),
        shutdown_timeout_seconds=max(10, timeout),
    )
    return jax.process_index(), jax.process_count()


def _already_initialized():
    from jax._src import distributed

    return distributed.global_state.client is not None


def distribution(devices=None):
    """`keras.distribution.DataParallel` over every process' devices.

    Dataset auto-sharding is off: keras-ssm feeds each process its part of
    each global batch itself (`shard_batches`), which works for NumPy
    arrays and `PyDataset`s, not only `tf.data`.
    """
    devices = devices or keras.distribution.list_devices()
    return keras.distribution.DataParallel(
        devices=devices, auto_shard_dataset=False
    )


def _feed(data, y, batch_size, shuffle, index, count):
    """This process' part of the global batches of `data` (see sharding)."""
    import numpy as np

    from keras_ssm.distribute.sharding import ShardedBatches

    if isinstance(data, keras.utils.PyDataset):
        return ShardedBatches(data, index, count)
    if isinstance(data, (tuple, list)) and y is None:
        arrays = tuple(data)
    else:
        arrays = (data,) if y is None else (data, y)
    for array in keras.tree.flatten(arrays):
        if not hasattr(array, "shape") or not hasattr(array, "__getitem__"):
            raise ValueError(
                "Multi-process JAX training feeds each process its part of "
                "every global batch from NumPy-like arrays or a "
                f"keras.utils.PyDataset; got {type(array).__name__}."
            )
    if batch_size is None:
        batch_size = 32  # Keras' default
    # The same seed in every process: they were seeded alike.
    seed = int(np.random.randint(0, 2**31 - 1))
    return ShardedBatches(
        arrays, index, count, batch_size=batch_size, shuffle=shuffle, seed=seed
    )


def prepare_model(model, process_index, process_count):
    """Makes `fit` and `evaluate` feed this process its part of each batch.

    Array inputs (`x`, `y`, `validation_data=(x, y)`) and `PyDataset`s are
    wrapped in `sharding.ShardedBatches`; the batch size stays global.
    Every process must use the same random seed (shuffling order).

    Args:
        model: a Keras model built under `distribution()`.
        process_index: this process' index.
        process_count: the number of processes.

    Returns:
        The same model, changed in place.
    """
    import types

    if getattr(model, "_keras_ssm_data_parallel", False):
        return model
    model._keras_ssm_data_parallel = True
    fit, evaluate = model.fit, model.evaluate

    def sharded_fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        shuffle=True,
        validation_data=None,
        validation_batch_size=None,
        **kwargs,
    ):
        x = _feed(x, y, batch_size, shuffle, process_index, process_count)
        if validation_data is not None:
            validation_data = _feed(
                validation_data,
                None,
                validation_batch_size or batch_size,
                False,
                process_index,
                process_count,
            )
        return fit(x, shuffle=False, validation_data=validation_data, **kwargs)

    def sharded_evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        x = _feed(x, y, batch_size, False, process_index, process_count)
        return evaluate(x, **kwargs)

    model.fit = types.MethodType(sharded_fit, model)
    model.evaluate = types.MethodType(sharded_evaluate, model)
    return model
