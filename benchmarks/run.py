"""The benchmark entry point: SSM blocks against attention, 1k to 16k steps.

Times compiled forward + backward and measures peak memory of one block of
each kind at matched width on the current backend and device:

* `s4d`: `keras_ssm.layers.S4DBlock` (FFT convolution, O(L log L)),
* `etsmlp`: `keras_ssm.layers.ETSMLPBlock` (CES exponential smoothing),
* `mamba`: `keras_ssm.layers.MambaBlock` (selective scan, O(L)),
* `mamba2`: `keras_ssm.layers.Mamba2Block` (chunked SSD, O(L)),
* `transformer`: `keras_hub.layers.TransformerEncoder` (attention, O(L^2)),

for each batch size and length, then fits the scaling exponent of time and
memory against length (log-log slope: ~1 for SSMs, ~2 for attention once
the quadratic term dominates). Prints a table and writes JSON to
`benchmarks/results/run_<backend>.json`.

Memory is measured over the timed steps (after a compiling warm-up call):
the device's peak allocation on a GPU, and on a CPU the peak growth of the
process's resident memory (sampled every millisecond) over its value
before the steps; allocator caches make that a lower bound. By default
each (model, batch) runs in a fresh subprocess so that no other model's
cached memory is reused (`--no-isolate`, the `--quick` default, runs
in-process). A configuration that fails (out of memory)
or exceeds `--max-step-seconds` ends that model's sweep.

Usage:

    KERAS_BACKEND=jax python benchmarks/run.py                 # full sweep
    KERAS_BACKEND=torch python benchmarks/run.py --quick       # seconds
    python benchmarks/run.py --models s4d,transformer --lengths 1024,4096
    python benchmarks/run.py --layer-scripts   # also bench_*.py of layers
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

MODELS = ("s4d", "etsmlp", "mamba", "mamba2", "transformer")
FULL = {"lengths": (1024, 2048, 4096, 8192, 16384), "batches": (1, 8)}
QUICK = {"lengths": (64, 128, 256), "batches": (1,), "hidden_dim": 16}


# The block settings of each model, built by the library's one block factory
# (`keras_ssm.models.blocks.make_block`). The Transformer here is the
# library's block with the usual benchmark ratios: one head per 32 channels
# and a 4x feed-forward.
def block_settings(name, hidden_dim):
    """The `make_block` settings of benchmark model `name` at `hidden_dim`."""
    if name not in MODELS:
        raise ValueError(
            f"`--models` entries must be in {MODELS}; got {name!r}."
        )
    return {
        "s4d": {"d_state": 64},
        "etsmlp": {"intermediate_dim": 2 * hidden_dim},
        "mamba": {"d_state": 16, "expand": 2},
        "mamba2": {
            "d_state": 64,
            "expand": 2,
            "headdim": min(64, 2 * hidden_dim),
        },
        "transformer": {
            "intermediate_dim": 4 * hidden_dim,
            "num_heads": max(1, hidden_dim // 32),
        },
    }[name]


def build_block(name, hidden_dim):
    """One block of kind `name` with `hidden_dim` channels in and out."""
    from keras_ssm.models.blocks import make_block

    return make_block(name, block_settings(name, hidden_dim), hidden_dim, 1)


class MemoryProbe:
    """Peak memory between `start()` and `peak_mb()`, in MiB.

    On a GPU it is the backend's peak device allocation. On a CPU a thread
    samples the resident memory every millisecond and reports the peak
    growth over the value at `start()`.
    """

    def __init__(self):
        import keras

        self.backend = keras.backend.backend()
        self.kind = "host RSS growth"
        self.baseline = 0.0
        self._sampler = None
        if self.backend == "torch":
            import torch

            if torch.cuda.is_available():
                self.kind = "device peak"
        elif self.backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                self.kind = "device peak"
        elif self.backend == "jax":
            import jax

            if jax.devices()[0].platform != "cpu":
                self.kind = "device peak"

    def start(self):
        if self.kind == "device peak":
            if self.backend == "torch":
                import torch

                torch.cuda.reset_peak_memory_stats()
            elif self.backend == "tensorflow":
                import tensorflow as tf

                tf.config.experimental.reset_memory_stats("GPU:0")
            else:  # JAX cannot reset its peak; subtract what is live now.
                self.baseline = self._jax_stats()["bytes_in_use"] / 2**20
            return
        self.baseline = _current_rss_mb()
        self._peak = self.baseline
        self._stop = threading.Event()

        def sample():
            while not self._stop.is_set():
                self._peak = max(self._peak, _current_rss_mb())
                time.sleep(0.001)

        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()

    def peak_mb(self):
        if self.kind != "device peak":
            self._stop.set()
            self._sampler.join()
            return self._peak - self.baseline
        if self.backend == "torch":
            import torch

            return torch.cuda.max_memory_allocated() / 2**20
        if self.backend == "tensorflow":
            import tensorflow as tf

            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / (
                2**20
            )
        return self._jax_stats()["peak_bytes_in_use"] / 2**20 - self.baseline

    @staticmethod
    def _jax_stats():
        import jax

        return jax.devices()[0].memory_stats()


def _current_rss_mb():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker_rows(model, batch, args):
    """Sweeps the lengths of one (model, batch); yields one dict per length."""
    import keras
    import numpy as np

    from benchmarks.harness import make_train_step
    from benchmarks.harness import time_call

    probe = MemoryProbe()
    for length in args.lengths:
        row = {"model": model, "batch": batch, "length": length}
        try:
            keras.utils.set_random_seed(0)
            block = build_block(model, args.hidden_dim)
            inputs = keras.ops.convert_to_tensor(
                np.random.randn(batch, length, args.hidden_dim).astype(
                    "float32"
                )
            )
            step = make_train_step(block, inputs)
            step()  # compile outside the measurement
            probe.start()
            seconds = time_call(step, repeats=args.repeats, warmup=0)
            row.update(time_ms=1e3 * seconds, memory_mb=probe.peak_mb())
            row["memory_kind"] = probe.kind
        except Exception as error:  # OOM and friends end the sweep.
            row["error"] = f"{type(error).__name__}: {str(error)[:200]}"
            yield row
            return
        yield row
        if seconds > args.max_step_seconds:
            return


def worker(args):
    """The subprocess side of `run_sweep`: prints one JSON line per row."""
    for row in worker_rows(args.model, args.batch, args):
        print(json.dumps(row), flush=True)


def run_sweep(model, batch, options):
    """Runs `worker` in a subprocess; returns its rows (partial on timeout)."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        "--models",
        model,
        "--batch",
        str(batch),
        "--lengths",
        ",".join(map(str, options.lengths)),
        "--hidden-dim",
        str(options.hidden_dim),
        "--repeats",
        str(options.repeats),
        "--max-step-seconds",
        str(options.max_step_seconds),
    ]
    from benchmarks.harness import run_worker

    env = dict(os.environ, PYTHONPATH=ROOT)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    rows, failed, error = run_worker(
        command, env, timeout=options.sweep_timeout
    )
    if failed and not rows:
        rows = [{"model": model, "batch": batch, "error": error}]
    return rows


def scaling_exponents(rows):
    """Log-log slopes of time and memory vs length per (model, batch)."""
    from benchmarks.harness import scaling_exponent

    fits = []
    keys = sorted({(r["model"], r["batch"]) for r in rows})
    for model, batch in keys:
        done = [
            r
            for r in rows
            if (r["model"], r["batch"]) == (model, batch) and "time_ms" in r
        ]
        if len(done) < 2:
            continue
        lengths = [r["length"] for r in done]
        fits.append(
            {
                "model": model,
                "batch": batch,
                "lengths": f"{min(lengths)}-{max(lengths)}",
                "time_exponent": scaling_exponent(
                    lengths, [r["time_ms"] for r in done]
                ),
                "memory_exponent": scaling_exponent(
                    lengths, [max(r["memory_mb"], 1e-3) for r in done]
                ),
            }
        )
    return fits


def run_layer_scripts():
    """Runs the per-layer `benchmarks/bench_*.py` scripts with defaults."""
    codes = {}
    for script in sorted(glob.glob(os.path.join(ROOT, "benchmarks", "b*.py"))):
        if not os.path.basename(script).startswith("bench_"):
            continue
        print(f"=== {os.path.relpath(script, ROOT)}", flush=True)
        env = dict(os.environ, PYTHONPATH=ROOT)
        codes[os.path.basename(script)] = subprocess.call(
            [sys.executable, script], cwd=ROOT, env=env
        )
    return codes


def parse_args(argv):
    from applications.common.arguments import add_renamed_option

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--lengths", default=None, help="e.g. 1024,4096")
    parser.add_argument("--batches", default=None, help="e.g. 1,8")
    add_renamed_option(
        parser, "--hidden-dim", "--d-model", type=int, default=None
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes (CI smoke test; also KERAS_SSM_QUICK=1)",
    )
    parser.add_argument("--max-step-seconds", type=float, default=30.0)
    parser.add_argument("--sweep-timeout", type=float, default=1800.0)
    parser.add_argument("--output", default=None, help="JSON path")
    parser.add_argument("--layer-scripts", action="store_true")
    parser.add_argument(
        "--isolate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one subprocess per (model, batch) so that peak memory is per "
        "model (default: on, off with --quick)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("KERAS_SSM_QUICK") == "1"
    preset = QUICK if quick else FULL
    args.quick = quick
    if args.isolate is None:
        args.isolate = not quick
    args.lengths = _ints(args.lengths, "--lengths") or list(preset["lengths"])
    args.batches = _ints(args.batches, "--batches") or list(preset["batches"])
    args.hidden_dim = args.hidden_dim or preset.get("hidden_dim", 128)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"--models must be drawn from {MODELS}; got {unknown}")
    if args.worker:
        args.model = args.models[0]
    return args


def _ints(text, flag):
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise SystemExit(f"{flag} must be positive integers like 1024,4096")
    return sorted(values)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        worker(args)
        return 0
    import keras

    from benchmarks.harness import device_name
    from benchmarks.harness import output_path
    from benchmarks.harness import print_table
    from benchmarks.harness import write_json

    backend = keras.backend.backend()
    print(
        f"backend={backend} device={device_name()} hidden_dim={args.hidden_dim}"
    )
    start = time.time()
    rows = []
    for model in args.models:
        for batch in args.batches:
            if args.isolate:
                sweep = run_sweep(model, batch, args)
            else:
                sweep = list(worker_rows(model, batch, args))
            for row in sweep:
                print(json.dumps(row), flush=True)
            rows += sweep
    columns = ["model", "batch", "length", "time_ms", "memory_mb", "error"]
    print_table([{"error": "", **row} for row in rows], columns)
    fits = scaling_exponents(rows)
    if fits:
        print()
        print_table(
            fits,
            ["model", "batch", "lengths", "time_exponent", "memory_exponent"],
        )
    write_json(
        output_path(args.output, "run"),
        {
            "hidden_dim": args.hidden_dim,
            "quick": args.quick,
            "wall_seconds": time.time() - start,
            # Timings on a shared machine are only as good as its idleness.
            "load_average": os.getloadavg(),
            "rows": rows,
            "scaling": fits,
        },
    )
    codes = run_layer_scripts() if args.layer_scripts else {}
    return 1 if any(codes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
