"""One training step of an S4D layer and a Mamba block, backends side by side.

Each configuration is a `keras.Model` around one layer, compiled with SGD
and a mean-squared-error loss under `model.compile`'s defaults, and timed
as one `train_on_batch` call (forward, backward and update), the shortest
of `--repeats` calls after a warm-up:

- `s4d`: `keras_ssm.layers.S4D` (d_state 64) on `(8, 4096, 256)` inputs;
  the ratio column divides by TensorFlow's time;
- `mamba`: `keras_ssm.layers.MambaBlock` (d_state 16, expand 2) of width 64
  on `(4, L, 64)` inputs, L = 1024 and 4096; the ratio column divides by
  the time of mambapy's parallel-scan block (`mambapy.mamba.Mamba` with
  one layer: RMSNorm, mixer, residual; `pip install mambapy`), trained the
  same way in PyTorch.

Each backend (and mambapy) runs in its own process, one after the other in
the same invocation, so the ratios compare runs on the same machine.

Usage:

    python benchmarks/bench_train_step.py                 # full size
    python benchmarks/bench_train_step.py --cases mamba --lengths 1024
    python benchmarks/bench_train_step.py --quick         # seconds (smoke)

Prints a table and writes `benchmarks/results/train_step.json` (or
`--output`).
"""

import argparse
import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.harness import print_table  # noqa: E402
from benchmarks.harness import run_worker  # noqa: E402
from benchmarks.harness import time_call  # noqa: E402

BACKENDS = ("jax", "tensorflow", "torch")
CASES = ("s4d", "mamba")
# (batch, width, lengths) of each case at full size and in --quick mode.
SHAPES = {
    "s4d": {"full": (8, 256, (4096,)), "quick": (2, 8, (64,))},
    "mamba": {"full": (4, 64, (1024, 4096)), "quick": (2, 8, (32,))},
}
REFERENCE = {"s4d": "tensorflow", "mamba": "mambapy"}


def _inputs(batch, length, width):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, length, width)).astype("float32")
    return x, np.zeros_like(x)


def keras_step(case, batch, length, width, quick):
    """`train_on_batch` of one keras-ssm layer on this process's backend."""
    import keras

    from keras_ssm.layers import S4D
    from keras_ssm.layers import MambaBlock

    keras.utils.set_random_seed(0)
    if case == "s4d":
        layer = S4D(d_state=8 if quick else 64)
    else:
        layer = MambaBlock(d_state=4 if quick else 16)
    inputs = keras.Input((length, width))
    model = keras.Model(inputs, layer(inputs))
    model.compile(keras.optimizers.SGD(1e-3), loss="mse")
    x, y = _inputs(batch, length, width)
    return lambda: model.train_on_batch(x, y)


def mambapy_step(case, batch, length, width, quick):
    """The same step with mambapy's parallel-scan Mamba block (PyTorch)."""
    import torch
    from mambapy.mamba import Mamba
    from mambapy.mamba import MambaConfig

    torch.manual_seed(0)
    config = MambaConfig(
        d_model=width, n_layers=1, d_state=4 if quick else 16, pscan=True
    )
    model = Mamba(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = (torch.from_numpy(a) for a in _inputs(batch, length, width))

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        return float(loss)

    return step


def worker(args):
    """One backend, one case, every length: one JSON line per row."""
    case = args.cases[0]
    batch, width, lengths = SHAPES[case]["quick" if args.quick else "full"]
    make = mambapy_step if args.backend == "mambapy" else keras_step
    for length in args.lengths or lengths:
        step = make(case, batch, length, width, args.quick)
        seconds = time_call(step, args.repeats, warmup=1, statistic="min")
        row = {
            "case": case,
            "backend": args.backend,
            "batch": batch,
            "width": width,
            "length": length,
            "step_ms": 1e3 * seconds,
        }
        print("ROW " + json.dumps(row), flush=True)


def _spawn(args, case, backend):
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        "--backend",
        backend,
        "--cases",
        case,
        "--repeats",
        str(args.repeats),
    ]
    if args.lengths:
        command += ["--lengths", *map(str, args.lengths)]
    if args.quick:
        command.append("--quick")
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "torch" if backend == "mambapy" else backend
    rows, failed, error = run_worker(command, env, prefix="ROW ")
    if failed or not rows:
        return [
            {
                "case": case,
                "backend": backend,
                "error": error.strip() or "no output",
            }
        ]
    return rows


def add_ratios(rows):
    """`ratio`: step time over the reference's (same case and length)."""
    reference = {
        (r["case"], r["length"]): r["step_ms"]
        for r in rows
        if "step_ms" in r and r["backend"] == REFERENCE[r["case"]]
    }
    for row in rows:
        ref = reference.get((row["case"], row.get("length")))
        if ref is not None and "step_ms" in row:
            row["ratio"] = row["step_ms"] / ref
    return rows


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--lengths", type=int, nargs="+")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--backend", choices=BACKENDS + ("mambapy",))
    args = parser.parse_args(argv)
    args.cases = args.cases.split(",")
    args.backends = args.backends.split(",")
    for name, values, allowed in (
        ("--cases", args.cases, CASES),
        ("--backends", args.backends, BACKENDS),
    ):
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            parser.error(
                f"{name}: unknown {', '.join(unknown)}; "
                f"choose from {', '.join(allowed)}"
            )
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.lengths and min(args.lengths) < 1:
        parser.error("--lengths must be positive integers")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        worker(args)
        return 0
    rows = []
    for case in args.cases:
        backends = list(args.backends)
        if case == "mamba":
            if importlib.util.find_spec("mambapy") is None:
                print("mambapy is not installed: no reference for mamba")
            else:
                backends.append("mambapy")
        for backend in backends:
            rows += _spawn(args, case, backend)
    add_ratios(rows)
    columns = ["case", "backend", "batch", "width", "length", "step_ms"]
    print_table(rows, columns + ["ratio"])
    failures = [r for r in rows if "error" in r]
    for row in failures:
        print(f"{row['case']} / {row['backend']} failed: {row['error']}")
    from applications.common import results

    path = args.output or os.path.join(
        ROOT, "benchmarks", "results", "train_step.json"
    )
    argv = sys.argv[1:] if argv is None else argv
    command = ["python", "benchmarks/bench_train_step.py", *argv]
    results.write_json(
        path,
        {
            "environment": results.environment(command),
            # Load while the workers ran: timings need an idle machine.
            "load_average": list(os.getloadavg()),
            "quick": args.quick,
            "rows": rows,
        },
    )
    print(f"wrote {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
