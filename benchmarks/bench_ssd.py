"""Forward + backward time of `keras_ssm.ops.ssd` for several chunk sizes.

Times sum(y^2) of Mamba-2's chunked SSD and its gradients with respect to
all five inputs (x, dt, A, B, C), compiled the way training compiles it on
the current backend (JAX `jit`, TensorFlow `tf.function`, PyTorch eager),
for each chunk size and length. This is the measurement behind the
per-backend default chunk size (`keras_ssm.ops.ssd.DEFAULT_CHUNK_SIZES`):
the inner quadratic form costs O(L Q) and the state passing O(L / Q)
sequential steps, so the best Q depends on the backend and device.

Usage:

    KERAS_BACKEND=jax python benchmarks/bench_ssd.py
    KERAS_BACKEND=torch python benchmarks/bench_ssd.py --lengths 2048 \
        --chunks 32 64 128 256 --heads 8 --headdim 64 --d-state 128
    python benchmarks/bench_ssd.py --quick      # seconds (smoke test)

Prints a table and writes `benchmarks/results/ssd_<backend>.json`. The
block-level comparison (Mamba-2 against Mamba and S4D blocks at equal
width, 1k..16k steps) is `benchmarks/run.py --models mamba2,mamba,s4d`.
"""

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

QUICK = {"lengths": [32], "chunks": [8], "heads": 2, "headdim": 4}


def make_inputs(batch, length, heads, headdim, d_state, seed=0):
    """Random float32 (x, dt, A, B, C) with one group."""
    rng = np.random.default_rng(seed)
    arrays = (
        rng.normal(size=(batch, length, heads, headdim)),
        rng.uniform(0.001, 0.1, (batch, length, heads)),
        -rng.uniform(1.0, 16.0, heads),
        rng.normal(size=(batch, length, 1, d_state)),
        rng.normal(size=(batch, length, 1, d_state)),
    )
    return [a.astype("float32") for a in arrays]


def ssd_loss(chunk_size):
    """mean(y^2) of `ssd(x, dt, A, B, C)` at `chunk_size`, as a function."""
    import keras

    from keras_ssm.ops.ssd import ssd

    def loss_fn(*inputs):
        y = ssd(*inputs, chunk_size=chunk_size)
        return keras.ops.mean(keras.ops.square(y))

    return loss_fn


def measure(args):
    """One row per (length, chunk size): median seconds of a step."""
    import keras

    from benchmarks.harness import loss_and_grad_step
    from benchmarks.harness import time_call

    rows = []
    for length in args.lengths:
        inputs = [
            keras.ops.convert_to_tensor(a)
            for a in make_inputs(
                args.batch, length, args.heads, args.headdim, args.d_state
            )
        ]
        for chunk in args.chunks:
            run = loss_and_grad_step(ssd_loss(chunk))
            seconds = time_call(lambda: run(*inputs), repeats=args.repeats)
            rows.append({"length": length, "chunk": chunk, "seconds": seconds})
            print(rows[-1], flush=True)
    return rows


def parse_args(argv):
    from benchmarks.harness import sweep_parser

    parser = sweep_parser(__doc__, [2048], batch=2)
    parser.add_argument(
        "--chunks", type=int, nargs="+", default=[32, 64, 128, 256]
    )
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--headdim", type=int, default=32)
    parser.add_argument("--d-state", type=int, default=64)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
        args.repeats = 1
    for name in ("lengths", "chunks"):
        if min(getattr(args, name)) < 1:
            parser.error(f"--{name} must be positive integers")
    return args


def main(argv=None):
    import keras

    from benchmarks.harness import device_name
    from benchmarks.harness import output_path
    from benchmarks.harness import print_table
    from benchmarks.harness import write_json

    args = parse_args(sys.argv[1:] if argv is None else argv)
    backend = keras.backend.backend()
    print(f"backend={backend} device={device_name()}")
    rows = measure(args)
    print_table(rows, ["length", "chunk", "seconds"])
    write_json(
        output_path(args.output, "ssd"),
        {
            "shape": {
                "batch": args.batch,
                "heads": args.heads,
                "headdim": args.headdim,
                "d_state": args.d_state,
            },
            "quick": args.quick,
            # Timings on a shared machine are only as good as its idleness.
            "load_average": os.getloadavg(),
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
