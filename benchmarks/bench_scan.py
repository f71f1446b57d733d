"""Forward + backward time and peak memory of each linear-recurrence path.

Times `mean(h**2)` and its gradient with respect to `log a` and `b` for the
recurrence h_t = a_t h_{t-1} + b_t of `keras_ssm.ops.log_linear_recurrence`
(the selective SSM's scan, decays given by their logs),
compiled the way training compiles it on the current backend (JAX `jit`,
TensorFlow `tf.function` (graph, and XLA where the path compiles), PyTorch
eager), over a range of lengths. Every method runs in its own process, with
lengths in increasing order, so that the process's peak resident memory
after length L is the peak of that path at length L (its growth tells
whether memory is linear in length).

Usage:

    KERAS_BACKEND=jax python benchmarks/bench_scan.py
    KERAS_BACKEND=torch python benchmarks/bench_scan.py \
        --lengths 512 1024 2048 4096 8192 --batch 2 --channels 1024

Prints a table and writes `benchmarks/results/scan_<backend>.json`.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

METHODS = ("sequential", "associative", "chunked", "logspace", "auto")


def _loss_and_grad_fn(method, chunk_size, jit_compile):
    """A callable (a, b) -> loss that also computes the gradients."""
    import keras

    from keras_ssm.ops.scan import log_linear_recurrence

    def loss_fn(log_a, b):
        h = log_linear_recurrence(
            log_a, b, method=method, chunk_size=chunk_size
        )
        return keras.ops.mean(h * h)

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grad_fn = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1)))

        def run(a, b):
            loss, grads = grad_fn(a, b)
            jax.block_until_ready(grads)
            return float(loss)

        return run
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=jit_compile)
        def tf_step(a, b):
            with tf.GradientTape() as tape:
                tape.watch([a, b])
                loss = loss_fn(a, b)
            return loss, tape.gradient(loss, [a, b])

        def run(a, b):
            loss, grads = tf_step(a, b)
            _ = [g.numpy() for g in grads]
            return float(loss)

        return run

    def run(a, b):
        a = a.detach().requires_grad_(True)
        b = b.detach().requires_grad_(True)
        loss = loss_fn(a, b)
        loss.backward()
        return float(loss)

    return run


def worker(args):
    """Times one method over all lengths in this process; prints JSON rows."""
    import keras

    from benchmarks.harness import peak_host_memory_mb
    from benchmarks.harness import time_call

    rng = np.random.default_rng(0)
    base_mb = peak_host_memory_mb()
    run = _loss_and_grad_fn(args.method, args.chunk_size, args.jit_compile)
    for length in args.lengths:
        shape = (args.batch, length, args.channels)
        log_a = keras.ops.convert_to_tensor(
            np.log(rng.uniform(0.9, 1.0, shape)).astype("float32")
        )
        b = keras.ops.convert_to_tensor(
            rng.normal(size=shape).astype("float32")
        )
        try:
            seconds = time_call(lambda: run(log_a, b), repeats=args.repeats)
            error = None
        except Exception as e:  # a path that cannot run here is reported
            seconds, error = None, f"{type(e).__name__}: {str(e)[:200]}"
        row = {
            "method": args.method + ("+xla" if args.jit_compile else ""),
            "length": length,
            "seconds": seconds,
            "peak_mb": peak_host_memory_mb() - base_mb,
            "error": error,
        }
        print("ROW " + json.dumps(row), flush=True)
        if error is not None or (seconds or 0) > args.max_seconds:
            break  # longer lengths would only take longer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192]
    )
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument(
        "--channels",
        type=int,
        default=1024,
        help="state channels per step (d_inner * d_state in Mamba)",
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=30.0,
        help="skip longer lengths of a method once one step takes this long",
    )
    parser.add_argument(
        "--xla",
        action="store_true",
        help="TensorFlow only: also time the methods under jit_compile=True",
    )
    parser.add_argument("--output", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--jit-compile", action="store_true", help="")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    import keras

    from benchmarks.harness import print_table
    from benchmarks.harness import scaling_exponent
    from benchmarks.harness import write_json

    backend = keras.backend.backend()
    runs = [(m, False) for m in args.methods]
    if args.xla and backend == "tensorflow":
        runs += [(m, True) for m in args.methods]
    rows = []
    for method, xla in runs:
        command = [sys.executable, os.path.abspath(__file__), "--worker"]
        command += ["--method", method, "--batch", str(args.batch)]
        command += ["--channels", str(args.channels)]
        command += ["--repeats", str(args.repeats)]
        command += ["--max-seconds", str(args.max_seconds)]
        command += ["--lengths", *map(str, args.lengths)]
        if args.chunk_size:
            command += ["--chunk-size", str(args.chunk_size)]
        if xla:
            command += ["--jit-compile"]
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        result = subprocess.run(
            command, env=env, capture_output=True, text=True
        )
        found = [
            json.loads(line[4:])
            for line in result.stdout.splitlines()
            if line.startswith("ROW ")
        ]
        if not found:
            found = [{"method": method, "error": result.stderr[-300:]}]
        rows.extend(found)

    sequential = {
        r["length"]: r["seconds"]
        for r in rows
        if r["method"] == "sequential" and r.get("seconds")
    }
    for row in rows:
        base = sequential.get(row.get("length"))
        if base and row.get("seconds"):
            row["speedup_vs_sequential"] = base / row["seconds"]
    print(
        f"\nlog_linear_recurrence forward+backward, {backend}, "
        f"batch {args.batch}, {args.channels} state channels"
    )
    print_table(
        rows,
        ["method", "length", "seconds", "speedup_vs_sequential", "peak_mb"],
    )
    exponents = {}
    for method in sorted({r["method"] for r in rows}):
        done = [r for r in rows if r["method"] == method and r.get("seconds")]
        if len(done) >= 2:
            lengths = [r["length"] for r in done]
            exponents[method] = {
                "time": scaling_exponent(lengths, [r["seconds"] for r in done]),
                "memory": scaling_exponent(
                    lengths, [max(r["peak_mb"], 1.0) for r in done]
                ),
            }
    print("scaling exponents (1 = linear in length):", exponents)
    for row in rows:
        if row.get("error"):
            print(f"{row['method']} L={row.get('length')}: {row['error']}")
    output = args.output or os.path.join(
        ROOT, "benchmarks", "results", f"scan_{backend}.json"
    )
    write_json(
        output,
        {
            "benchmark": "log_linear_recurrence forward+backward",
            "batch": args.batch,
            "channels": args.channels,
            "rows": rows,
            "scaling_exponents": exponents,
        },
    )


if __name__ == "__main__":
    main()
