"""Timing and memory measurement shared by the benchmark scripts.

Every benchmark times forward + backward of a layer on the current Keras
backend, prints a table and writes JSON. Numbers from one run are comparable
with each other; ratios between runs on different days are not.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import time

import keras
import numpy as np

# The one log-log slope of the project, under the name the benchmarks use.
from applications.common.scaling import scaling_exponent  # noqa: F401

# The lengths of the full sweeps: 1k to 16k steps.
LENGTHS = (1024, 2048, 4096, 8192, 16384)


def sweep_parser(doc, lengths, batch):
    """The options of a sweep over lengths, for a script to add its own to.

    `--lengths` (several), `--batch`, `--repeats` (timed calls, default 3)
    and `--output` (see `output_path`).

    Args:
        doc: the script's docstring; its first line is the description.
        lengths: the default of `--lengths`.
        batch: the default of `--batch`.

    Returns:
        An `argparse.ArgumentParser`.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=list(lengths))
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--output",
        default=None,
        help="JSON path (default benchmarks/results/<name>_<backend>.json)",
    )
    return parser


def device_name():
    """A short description of the device the backend computes on."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return device.device_kind
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return gpus[0].name
    return f"CPU ({platform.processor() or platform.machine()}, " + (
        f"{os.cpu_count()} cores)"
    )


def peak_host_memory_mb():
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_train_step(layer, inputs):
    """A compiled forward + backward of sum(layer(x)^2) on this backend.

    Returns a zero-argument callable that runs one step and blocks until the
    result is ready.
    """
    backend = keras.backend.backend()
    layer(inputs)  # build
    if backend == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def loss_fn(trainable, x):
            y, _ = layer.stateless_call(trainable, non_trainable, x)
            return (y.astype("float32") ** 2).mean()

        grad_fn = jax.jit(jax.value_and_grad(loss_fn))

        def run():
            loss, grads = grad_fn(trainable, inputs)
            jax.block_until_ready(grads)
            return loss

        return run
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=False)
        def tf_step(x):
            with tf.GradientTape() as tape:
                y = layer(x, training=True)
                loss = tf.reduce_mean(tf.square(tf.cast(y, "float32")))
            return loss, tape.gradient(loss, layer.trainable_variables)

        def run():
            loss, grads = tf_step(inputs)
            _ = [g.numpy() for g in grads if g is not None]
            return loss

        return run
    import torch

    def run():
        for v in layer.trainable_variables:
            v.value.grad = None
        y = layer(inputs, training=True)
        loss = (y.float() ** 2).mean()
        loss.backward()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return loss

    return run


def loss_and_grad_step(loss_fn, jit_compile=None):
    """`run(*inputs)`: `loss_fn(*inputs)` and its gradients, compiled.

    The gradients are taken with respect to every input, compiled the way
    training compiles on this backend (JAX `jit`, TensorFlow `tf.function`,
    PyTorch eager); `run` blocks until they are computed.

    Args:
        loss_fn: a function of backend tensors returning a scalar.
        jit_compile: TensorFlow's `jit_compile` (XLA); other backends
            ignore it.

    Returns:
        `run(*inputs)` -> the loss as a Python float.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grad_fn = None

        def run(*inputs):
            nonlocal grad_fn
            if grad_fn is None:  # one gradient per input
                argnums = tuple(range(len(inputs)))
                grad_fn = jax.jit(jax.value_and_grad(loss_fn, argnums))
            loss, grads = grad_fn(*inputs)
            jax.block_until_ready(grads)
            return float(loss)

        return run
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=jit_compile)
        def tf_step(*inputs):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                loss = loss_fn(*inputs)
            return loss, tape.gradient(loss, inputs)

        def run(*inputs):
            loss, grads = tf_step(*inputs)
            _ = [g.numpy() for g in grads]
            return float(loss)

        return run

    def run(*inputs):
        inputs = [x.detach().requires_grad_(True) for x in inputs]
        loss = loss_fn(*inputs)
        loss.backward()
        return float(loss)

    return run


def time_call(fn, repeats=3, warmup=1, statistic="median"):
    """Wall time of `fn()` in seconds after `warmup` calls.

    `statistic` is `"median"` of the `repeats` calls, or `"min"` (the
    run least disturbed by the rest of the machine).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.min(times) if statistic == "min" else np.median(times))


def run_worker(command, env, prefix="", timeout=None):
    """Runs a worker process and reads the JSON rows it printed.

    Args:
        command: the worker's command line.
        env: its environment.
        prefix: what starts each row's line (the JSON object follows).
        timeout: seconds before the worker is stopped (None: no limit);
            the rows printed until then are kept.

    Returns:
        `(rows, failed, error)`: the rows, whether the worker failed or
        timed out, and the end of its standard error (or "sweep timed
        out").
    """
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout
        )
        stdout, failed, error = done.stdout, done.returncode != 0, done.stderr
    except subprocess.TimeoutExpired as expired:
        stdout = expired.stdout or b""
        if isinstance(stdout, bytes):
            stdout = stdout.decode()
        failed, error = True, "sweep timed out"
    rows = [
        json.loads(line[len(prefix) :])
        for line in stdout.splitlines()
        if line.startswith(prefix + "{")
    ]
    return rows, failed, error[-300:]


def print_table(rows, columns):
    """Prints a list of dicts as an aligned text table."""
    widths = {
        c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns
    }
    print("  ".join(c.rjust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(_fmt(row.get(c)).rjust(widths[c]) for c in columns))


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def output_path(path, stem):
    """`path`, or `benchmarks/results/<stem>_<backend>.json` when None."""
    return path or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"{stem}_{keras.backend.backend()}.json",
    )


def write_json(path, payload):
    """Writes `payload` plus backend, device and date to `path`, atomically.

    The environment is `applications.common.results.environment()`'s (the
    one metadata function of the project), with the device added.
    """
    from applications.common import results

    payload = {
        "backend": keras.backend.backend(),
        "device": device_name(),
        "date": time.strftime("%Y-%m-%d"),
        "environment": results.environment(),
        **payload,
    }
    results.write_json(path, payload)
    print(f"wrote {path}")
