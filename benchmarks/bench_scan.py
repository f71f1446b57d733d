"""Forward + backward time and peak memory of each scan path.

`--op recurrence` (default) times `mean(h**2)` and its gradient for the
recurrence h_t = a_t h_{t-1} + b_t of `keras_ssm.ops.log_linear_recurrence`
(decays given by their logs), `--channels` state channels per step.
`--op selective` times Mamba's whole scan, `keras_ssm.ops.selective_scan`
(u, dt, A, B, C -> y, gradients for all five), with `--channels` = d_inner
and `--d-state` states per channel; it also has the `"streaming"` method.
Each is compiled the way training compiles it on the current backend (JAX
`jit`, TensorFlow `tf.function` (graph, and XLA where the path compiles),
PyTorch eager), over a range of lengths. Every method runs in its own
process, with lengths in increasing order, so that the process's peak
resident memory after length L is the peak of that path at length L (its
growth tells whether memory is linear in length).

Usage:

    KERAS_BACKEND=jax python benchmarks/bench_scan.py
    KERAS_BACKEND=jax python benchmarks/bench_scan.py --op selective \
        --batch 1 --channels 128 --d-state 16
    KERAS_BACKEND=torch python benchmarks/bench_scan.py \
        --lengths 512 1024 2048 4096 8192 --batch 2 --channels 1024

Prints a table and writes `benchmarks/results/scan_<backend>.json`
(`selective_scan_<backend>.json` with `--op selective`).
"""

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

METHODS = ("sequential", "associative", "chunked", "logspace", "auto")
SELECTIVE_METHODS = ("sequential", "chunked", "logspace", "streaming", "auto")


def _scan_loss(op, method, chunk_size):
    """The scalar loss of one scan, as a function of its input tensors."""
    import keras

    from keras_ssm.ops.scan import log_linear_recurrence
    from keras_ssm.ops.selective_scan import selective_scan

    if op == "selective":

        def loss_fn(*inputs):
            y = selective_scan(*inputs, method=method, chunk_size=chunk_size)
            return keras.ops.mean(y * y)

        return loss_fn

    def loss_fn(log_a, b):
        h = log_linear_recurrence(
            log_a, b, method=method, chunk_size=chunk_size
        )
        return keras.ops.mean(h * h)

    return loss_fn


def _inputs(op, shape, d_state, rng):
    """Random inputs of the timed scan, float32 NumPy."""
    batch, length, channels = shape
    if op == "selective":
        return (
            rng.normal(size=shape),  # u
            rng.uniform(0.001, 0.1, shape),  # dt
            -np.tile(np.arange(1, d_state + 1.0), (channels, 1)),  # A
            rng.normal(size=(batch, length, d_state)),  # B
            rng.normal(size=(batch, length, d_state)),  # C
        )
    return np.log(rng.uniform(0.9, 1.0, shape)), rng.normal(size=shape)


def worker(args):
    """Times one method over all lengths in this process; prints JSON rows."""
    import keras

    from benchmarks.harness import loss_and_grad_step
    from benchmarks.harness import peak_host_memory_mb
    from benchmarks.harness import time_call

    rng = np.random.default_rng(0)
    base_mb = peak_host_memory_mb()
    loss_fn = _scan_loss(args.op, args.method, args.chunk_size)
    run = loss_and_grad_step(loss_fn, args.jit_compile)
    for length in args.lengths:
        shape = (args.batch, length, args.channels)
        inputs = [
            keras.ops.convert_to_tensor(x.astype("float32"))
            for x in _inputs(args.op, shape, args.d_state, rng)
        ]
        try:
            seconds = time_call(lambda: run(*inputs), repeats=args.repeats)
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
    from benchmarks.harness import sweep_parser

    parser = sweep_parser(__doc__, [512, 1024, 2048, 4096, 8192], batch=2)
    parser.add_argument(
        "--channels",
        type=int,
        default=1024,
        help="state channels per step (d_inner * d_state in Mamba)",
    )
    parser.add_argument(
        "--op", choices=("recurrence", "selective"), default="recurrence"
    )
    parser.add_argument(
        "--d-state", type=int, default=16, help="--op selective: N"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="default: every method of the op",
    )
    parser.add_argument("--chunk-size", type=int, default=None)
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
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--jit-compile", action="store_true", help="")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    import keras

    from benchmarks.harness import output_path
    from benchmarks.harness import print_table
    from benchmarks.harness import run_worker
    from benchmarks.harness import scaling_exponent
    from benchmarks.harness import write_json

    backend = keras.backend.backend()
    if args.methods is None:
        selective = args.op == "selective"
        args.methods = list(SELECTIVE_METHODS if selective else METHODS)
    runs = [(m, False) for m in args.methods]
    if args.xla and backend == "tensorflow":
        runs += [(m, True) for m in args.methods]
    rows = []
    for method, xla in runs:
        command = [sys.executable, os.path.abspath(__file__), "--worker"]
        command += ["--method", method, "--batch", str(args.batch)]
        command += ["--channels", str(args.channels)]
        command += ["--op", args.op, "--d-state", str(args.d_state)]
        command += ["--repeats", str(args.repeats)]
        command += ["--max-seconds", str(args.max_seconds)]
        command += ["--lengths", *map(str, args.lengths)]
        if args.chunk_size:
            command += ["--chunk-size", str(args.chunk_size)]
        if xla:
            command += ["--jit-compile"]
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        found, _, error = run_worker(command, env, prefix="ROW ")
        if not found:
            found = [{"method": method, "error": error}]
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
    if args.op == "selective":
        title = "selective_scan forward+backward"
        sizes = f"d_inner {args.channels}, d_state {args.d_state}"
    else:
        title = "log_linear_recurrence forward+backward"
        sizes = f"{args.channels} state channels"
    print(f"\n{title}, {backend}, batch {args.batch}, {sizes}")
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
    stem = "selective_scan" if args.op == "selective" else "scan"
    write_json(
        output_path(args.output, stem),
        {
            "benchmark": title,
            "batch": args.batch,
            "channels": args.channels,
            "d_state": args.d_state if args.op == "selective" else None,
            "rows": rows,
            "scaling_exponents": exponents,
        },
    )


if __name__ == "__main__":
    main()
