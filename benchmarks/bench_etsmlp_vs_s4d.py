"""Forward + backward throughput of the ETSMLP block against the S4D block.

The ETSMLP paper (Chu & Lin, 2024) reports the highest words per second of
S4, Mega and ETSMLP. This script times one compiled training step
(forward, loss mean(y^2), gradients of all weights; `benchmarks/harness.py`)
of `ETSMLPBlock`, `ETSMLPGate` and `S4DBlock` at matched width hidden_dim on
the current backend, over a range of lengths, and reports tokens per second
and the speed ratio of each ETSMLP variant over S4D at each length.

Matched width: every block maps hidden_dim channels to hidden_dim; the
ETSMLP inner width (`--intermediate-dim`) defaults to hidden_dim (the
paper's LRA configurations) and the S4D block uses its defaults (d_state
64, GLU output projection).

Usage:

    KERAS_BACKEND=jax python benchmarks/bench_etsmlp_vs_s4d.py
    KERAS_BACKEND=torch python benchmarks/bench_etsmlp_vs_s4d.py \
        --lengths 1024 2048 4096 --batch 8 --hidden-dim 256

Prints a table and writes `benchmarks/results/etsmlp_vs_s4d_<backend>.json`.
"""

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

MODELS = ("etsmlp", "etsmlp_gate", "s4d")


def build_block(name, hidden_dim, intermediate_dim, d_state):
    """The block called `name` (the library's `make_block`) of width
    `hidden_dim`; `intermediate_dim` is the ETSMLP inner width."""
    from keras_ssm.models.blocks import make_block

    if name not in MODELS:
        raise ValueError(f"`name` must be one of {MODELS}, got {name!r}.")
    if name == "s4d":
        settings = {"d_state": d_state}
    else:
        settings = {"intermediate_dim": intermediate_dim}
    return make_block(name, settings, hidden_dim, num_layers=1)


def time_block(name, length, args):
    """One row {model, length, seconds, tokens_per_s, params, error}."""
    import keras

    from benchmarks.harness import make_train_step
    from benchmarks.harness import time_call

    keras.utils.set_random_seed(0)
    block = build_block(
        name,
        args.hidden_dim,
        args.intermediate_dim or args.hidden_dim,
        args.d_state,
    )
    x = np.random.default_rng(0).normal(
        size=(args.batch, length, args.hidden_dim)
    )
    x = keras.ops.convert_to_tensor(x.astype("float32"))
    try:
        seconds = time_call(make_train_step(block, x), repeats=args.repeats)
        error = None
    except Exception as e:  # e.g. out of memory: reported, not fatal
        seconds, error = None, f"{type(e).__name__}: {str(e)[:200]}"
    print(f"  {name} L={length}: {seconds} s", flush=True)
    return {
        "model": name,
        "length": length,
        "seconds": seconds,
        "tokens_per_s": args.batch * length / seconds if seconds else None,
        "params": block.count_params() if block.built else None,
        "error": error,
    }


def sweep(args):
    """Times every model at each length, the models interleaved so that a
    change in machine load between lengths affects all of them alike."""
    rows, active = [], list(args.models)
    for length in args.lengths:
        for name in list(active):
            row = time_block(name, length, args)
            rows.append(row)
            if row["error"] is not None or row["seconds"] > args.max_seconds:
                active.remove(name)  # longer sequences would only be slower
    return rows


def add_ratios(rows):
    """S4D time / ETSMLP time at each length (> 1: ETSMLP is faster)."""
    s4d = {r["length"]: r["seconds"] for r in rows if r["model"] == "s4d"}
    for row in rows:
        base = s4d.get(row["length"])
        if row["model"] != "s4d" and base and row["seconds"]:
            row["speedup_vs_s4d"] = base / row["seconds"]


def main(argv=None):
    from applications.common.arguments import add_renamed_option
    from benchmarks.harness import LENGTHS
    from benchmarks.harness import sweep_parser

    parser = sweep_parser(__doc__, LENGTHS, batch=8)
    add_renamed_option(
        parser, "--hidden-dim", "--d-model", type=int, default=256
    )
    parser.add_argument(
        "--intermediate-dim",
        type=int,
        default=None,
        help="ETSMLP inner width (default --hidden-dim)",
    )
    parser.add_argument("--d-state", type=int, default=64, help="S4D state")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="stop a model's sweep once one step takes this long",
    )
    args = parser.parse_args(argv)

    import keras

    from benchmarks.harness import output_path
    from benchmarks.harness import print_table
    from benchmarks.harness import scaling_exponent
    from benchmarks.harness import write_json

    backend = keras.backend.backend()
    print(
        f"forward+backward, {backend}, batch {args.batch}, hidden_dim "
        f"{args.hidden_dim}, lengths {args.lengths}",
        flush=True,
    )
    rows = sweep(args)
    add_ratios(rows)
    print()
    print_table(
        rows,
        ["model", "length", "seconds", "tokens_per_s", "speedup_vs_s4d"],
    )
    exponents = {}
    for name in args.models:
        done = [r for r in rows if r["model"] == name and r["seconds"]]
        if len(done) > 1:
            exponents[name] = scaling_exponent(
                [r["length"] for r in done], [r["seconds"] for r in done]
            )
    print("time ~ length^p:", {k: round(v, 2) for k, v in exponents.items()})
    write_json(
        output_path(args.output, "etsmlp_vs_s4d"),
        {
            "batch": args.batch,
            "hidden_dim": args.hidden_dim,
            "intermediate_dim": args.intermediate_dim or args.hidden_dim,
            "d_state": args.d_state,
            "repeats": args.repeats,
            "rows": rows,
            "scaling_exponents": exponents,
        },
    )


if __name__ == "__main__":
    main()
