"""Data parallelism in one process, over every local device.

`data_parallel()` wraps model building, `compile()` and `fit()`:

* JAX: `keras.distribution.DataParallel` over the local devices; each batch
  is split along its first axis and gradients are averaged across devices.
* TensorFlow: `tf.distribute.MirroredStrategy` over the local GPUs, or over
  the logical CPUs when there is no GPU.
* PyTorch: Keras has no distribution API for torch and one torch process
  drives one device; a clear error says to start several processes with
  `torchrun` instead (see `TORCH_HELP` and `keras_ssm.distribute`).

The batch size given to `fit()` stays the *global* batch: with the same
global batch, one and several devices follow the same loss trajectory up to
floating-point reordering.

To try it on a CPU-only machine, simulate devices before the backend starts:
JAX reads `XLA_FLAGS=--xla_force_host_platform_device_count=2` at import;
TensorFlow needs `simulate_host_devices(2)` before its first op.
"""

import contextlib
import os

import keras

TORCH_HELP = (
    "Under the PyTorch backend one process drives one device, so data "
    "parallelism needs one process per device: start the same command with "
    "`torchrun --nproc_per_node=N` (keras_ssm.distribute joins the "
    "torch.distributed process group and averages the gradients). Or run "
    "it in one process with KERAS_BACKEND=jax (keras.distribution."
    "DataParallel) or KERAS_BACKEND=tensorflow (tf.distribute."
    "MirroredStrategy). Without --data-parallel, torch trains on one device."
)


def simulate_host_devices(count):
    """Splits the host CPU into `count` devices for data-parallel tests.

    Must run before the backend initialises its devices: for JAX it sets
    `XLA_FLAGS` (so call it before `import jax`, e.g. in a fresh process);
    for TensorFlow it declares `count` logical CPUs.

    Args:
        count: number of host devices, an integer >= 1.

    Example:

    ```python
    simulate_host_devices(2)  # before any TensorFlow/JAX computation
    ```
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"`count` must be an integer >= 1; got {count!r}.")
    backend = keras.backend.backend()
    if backend == "jax":
        flag = f"--xla_force_host_platform_device_count={count}"
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()
    elif backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )


def local_devices():
    """The devices data parallelism spreads over on this backend.

    Returns accelerator devices when there are any, else the (possibly
    simulated) CPU devices, as backend-specific device names.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        return keras.distribution.list_devices()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return [d.name for d in devices]
    raise RuntimeError(TORCH_HELP)


@contextlib.contextmanager
def data_parallel(enabled=True, num_devices=None):
    """Context manager: build, compile and fit inside it to use all devices.

    Args:
        enabled: if False, a no-op (so CLIs can pass their flag through).
        num_devices: how many local devices to use; `None` uses all of
            them. Must be between 1 and the number of local devices.

    Yields:
        The active `keras.distribution.DataParallel` (JAX) or
        `tf.distribute.MirroredStrategy` (TensorFlow); `None` when disabled.

    Raises:
        RuntimeError: under the PyTorch backend, with instructions.
        ValueError: if `num_devices` is out of range.

    Example:

    ```python
    with data_parallel(enabled=args.data_parallel):
        model = build_model()
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, batch_size=64)  # 64 = global batch
    ```
    """
    if not enabled:
        yield None
        return
    devices = _select_devices(num_devices)
    if keras.backend.backend() == "jax":
        distribution = keras.distribution.DataParallel(devices=devices)
        with distribution.scope():
            yield distribution
    else:
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(devices=devices)
        with strategy.scope():
            yield strategy


def _select_devices(num_devices):
    devices = local_devices()
    if num_devices is None:
        return devices
    if (
        not isinstance(num_devices, int)
        or num_devices < 1
        or num_devices > len(devices)
    ):
        raise ValueError(
            f"`num_devices` must be an integer in [1, {len(devices)}] (the "
            f"local devices: {devices}); got {num_devices!r}."
        )
    return devices[:num_devices]
