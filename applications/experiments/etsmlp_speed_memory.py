"""Training speed and peak memory against length: ETSMLP, S4D, Transformer.

The Figure 3 setting of *Incorporating Exponential Smoothing into MLP*
(Chu & Lin, 2024): language-model training at batch size 1 on sequences
of growing length, words (tokens) per second and memory of ETSMLP, S4 and
the Transformer at about equal size. The paper's claim: ETSMLP trains
fastest at every length, its speed stays flat as the length grows while
the Transformer's falls, and its memory grows linearly (with a lower slope
than S4's) while the Transformer's grows almost quadratically; below about
3k tokens the Transformer and ETSMLP differ little.

Here, on the current backend and device:

- the models are `SSMBackbone` stacks over a byte vocabulary with a dense
  next-token head, trained with Adam on random token sequences (the loss
  value is not the point; the cost of a training step is). ETSMLP is
  causal (the language-model setting), S4D is `S4DBlock`, the Transformer
  keras-hub's pre-norm `TransformerEncoder` with a learned position
  embedding. The attention runs without a causal mask: masking does not
  change its cost, the L x L scores are formed either way;
- equal parameter count: ETSMLP's stack sets the count; S4D and the
  Transformer take the width (`hidden_dim`, same depth) whose count is
  closest. The Transformer's position embedding (length x width, which
  grows with the length) is left out of the matching and reported;
- every (model, length, repeat) is measured in a fresh subprocess, so its
  peak memory is its own: the peak resident set size during the timed
  training steps (`VmHWM` of `/proc/self/status`, reset after the warm-up
  through `/proc/self/clear_refs`) less the resident size after the model
  is built and its data made. The warm-up steps (compilation included) are
  left out of the timing and of the peak, but what they leave resident
  (optimizer state, compiled programs, the allocator's cache) counts in
  the growth: at short lengths that constant dominates it;
- a configuration that runs out of memory (the worker's data segment is
  capped at `--memory-cap-mb` through `RLIMIT_DATA`, so a long Transformer
  fails alone instead of exhausting a shared machine) or exceeds
  `--config-timeout` seconds is recorded as such, not crashed on.

Repeats (`--seeds`) are fresh processes with the seed as random seed;
tokens per second and peak memory are reported as mean +- std over them.
Timings depend on the machine and its load: run the full mode on an idle
machine for numbers worth comparing.

Example:

    python -m applications.experiments.etsmlp_speed_memory --seeds 0 1 2
"""

import json
import math
import os
import resource
import subprocess
import sys
import time

from applications.common.scaling import matched_width
from applications.common.scaling import scaling_exponent
from applications.experiments import common

NAME = "etsmlp_speed_memory"
MODELS = ("etsmlp", "s4d", "transformer")
LABELS = {"etsmlp": "ETSMLP", "s4d": "S4D", "transformer": "Transformer"}
LENGTHS = (1024, 2048, 4096, 8192, 16384)
QUICK_LENGTHS = (32, 64)
VOCABULARY = 256  # bytes
RESULT_PREFIX = "SPEED_MEMORY_RESULT "
# The paper's Figure 3 reading: below ~3072 tokens little difference.
PAPER_SHORT_LENGTH = 3072


def add_arguments(parser):
    parser.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        default=None,
        help=f"Sequence lengths (default {' '.join(map(str, LENGTHS))}; "
        f"{' '.join(map(str, QUICK_LENGTHS))} with --quick).",
    )
    parser.add_argument(
        "--models", nargs="+", choices=MODELS, default=list(MODELS)
    )
    parser.add_argument(
        "--num-layers", type=int, default=None, help="Depth (default 4)."
    )
    parser.add_argument(
        "--hidden-dim",
        type=int,
        default=None,
        help="ETSMLP's width (default 128); the others are matched to it.",
    )
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        help="Untimed training steps first (default 2; 1 with --quick).",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="Timed training steps (default 5; 2 with --quick), fewer when "
        "--step-budget runs out first (at least one).",
    )
    parser.add_argument(
        "--step-budget",
        type=float,
        default=60.0,
        help="Seconds after which no further timed step starts.",
    )
    parser.add_argument(
        "--config-timeout",
        type=float,
        default=900.0,
        help="Seconds one configuration may take (import, build, warm-up "
        "and timed steps) before it is recorded as too slow.",
    )
    parser.add_argument(
        "--memory-cap-mb",
        type=float,
        default=6000.0,
        help="Data-segment cap of each worker process (RLIMIT_DATA), MB.",
    )
    parser.add_argument(
        "--worker",
        default=None,
        help="Internal: measure one configuration given as JSON.",
    )


# -- models --------------------------------------------------------------------


def build_model(model, hidden_dim, num_layers, length):
    """A next-token model: `SSMBackbone` of `model` blocks + dense head."""
    import keras

    from keras_ssm.models import SSMBackbone

    settings = {}
    if model == "etsmlp":
        # The MLP's hidden width is twice the width, as the paper's
        # Pathfinder and Image rows of Table 5; causal for language models.
        settings = {"intermediate_dim": 2 * hidden_dim, "bidirectional": False}
    elif model == "s4d":
        settings = {"d_state": 64, "bidirectional": False}
    else:
        settings = {"intermediate_dim": 2 * hidden_dim, "num_heads": 4}
    backbone = SSMBackbone(
        model,
        num_layers=num_layers,
        hidden_dim=hidden_dim,
        vocabulary_size=VOCABULARY,
        sequence_length=length,
        **settings,
    )
    tokens = keras.Input((length,), dtype="int32")
    logits = keras.layers.Dense(VOCABULARY, name="next_token")(backbone(tokens))
    return keras.Model(tokens, logits)


def matching_count(model):
    """Parameters without the Transformer's position embedding."""
    count = model.count_params()
    for weight in model.weights:
        if "position" in weight.path:
            count -= math.prod(weight.shape)
    return count


def position_embedding_count(model):
    return model.count_params() - matching_count(model)


def closest_width(model, num_layers, target, hidden_dim):
    """(width, count) of `model` with the count closest to `target`.

    Widths are multiples of 4 (the Transformer's 4 heads divide them).
    """

    def count(width):
        return matching_count(build_model(model, width, num_layers, 64))

    return matched_width(count, target, limit=64 * 4 * hidden_dim)


def matched_widths(models, hidden_dim, num_layers):
    """{model: (hidden_dim, matching count)}; ETSMLP sets the target."""
    # Length 64 for counting: only the position embedding depends on it,
    # and it is left out of the matching.
    target = matching_count(build_model("etsmlp", hidden_dim, num_layers, 64))
    widths = {"etsmlp": (hidden_dim, target)}
    for model in models:
        if model == "etsmlp":
            continue
        widths[model] = closest_width(model, num_layers, target, hidden_dim)
    return widths


# -- the worker: one configuration in a fresh process -------------------------


def _status_kb(field):
    """A `kB` field of /proc/self/status (VmRSS, VmHWM), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak():
    """Resets VmHWM to the current RSS; False where the kernel cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_worker(config):
    """Measures one (model, length, seed); returns a dict of the numbers."""
    if config.get("memory_cap_mb"):
        cap = int(config["memory_cap_mb"] * 2**20)
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    import keras
    import numpy as np

    keras.utils.set_random_seed(config["seed"])
    length = config["length"]
    model = build_model(
        config["model"], config["hidden_dim"], config["num_layers"], length
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(config["seed"])
    tokens = rng.integers(1, VOCABULARY, size=(1, length + 1)).astype("int32")
    x, y = tokens[:, :-1], tokens[:, 1:]
    rss_built_kb = _status_kb("VmRSS")
    for _ in range(config["warmup_steps"]):
        model.train_on_batch(x, y)
    rss_warm_kb = _status_kb("VmRSS")
    peak_method = "VmHWM after reset" if _reset_peak() else None
    if peak_method is None or _status_kb("VmHWM") is None:
        # Peak since the process started: includes import and compilation.
        peak_method = "ru_maxrss since start"
    timed, start = 0, time.perf_counter()
    while timed < config["steps"]:
        loss = model.train_on_batch(x, y)
        timed += 1
        if time.perf_counter() - start > config["step_budget"]:
            break
    seconds = time.perf_counter() - start
    if peak_method.startswith("VmHWM"):
        peak_kb = _status_kb("VmHWM")
    else:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    loss = float(np.asarray(loss).reshape(-1)[0])
    return {
        "status": "ok",
        "timed_steps": timed,
        "seconds": seconds,
        "tokens_per_second": length * timed / seconds,
        "rss_built_mb": rss_built_kb / 1024 if rss_built_kb else None,
        "rss_after_warmup_mb": rss_warm_kb / 1024 if rss_warm_kb else None,
        "peak_rss_mb": peak_kb / 1024,
        "peak_growth_mb": (peak_kb - (rss_built_kb or 0)) / 1024,
        "peak_method": peak_method,
        "num_parameters": int(model.count_params()),
        "position_embedding_parameters": position_embedding_count(model),
        "loss_finite": bool(np.isfinite(loss)),
    }


OUT_OF_MEMORY_SIGNS = (
    "MemoryError",
    "out of memory",
    "RESOURCE_EXHAUSTED",
    "ResourceExhausted",
    "std::bad_alloc",
    "Cannot allocate memory",
    "failed to allocate",
    "DefaultCPUAllocator: can't allocate",
)


def measure(config, timeout):
    """Runs `run_worker(config)` in a fresh process; never raises.

    Returns the worker's dict, or `{"status": ...}` for a configuration
    that ran out of memory, ran past `timeout` seconds or failed.
    """
    command = [
        sys.executable,
        "-m",
        f"applications.experiments.{NAME}",
        "--worker",
        json.dumps(config),
    ]
    env = dict(os.environ, KERAS_BACKEND=config["backend"])
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return {"status": f"too slow (over {timeout:g} s)"}
    wall = time.perf_counter() - started
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            result["process_seconds"] = wall
            return result
    output = done.stderr + done.stdout
    if done.returncode in (-9, 137) or any(
        sign.lower() in output.lower() for sign in OUT_OF_MEMORY_SIGNS
    ):
        status = "out of memory"
    else:
        status = f"failed (exit {done.returncode})"
    return {"status": status, "error": output.strip()[-500:]}


ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


# -- the experiment ------------------------------------------------------------


def _stat(runs, key):
    values = [r[key] for r in runs if r.get("status") == "ok"]
    return common.summarize(values) if len(values) == len(runs) else None


def verdict_pair(name, other, length, key, cells, higher_is_better):
    """ETSMLP against `other` at `length` on `key`: a verdict dict."""
    mine, theirs = cells[name][length], cells[other][length]
    what = "faster" if key == "tokens_per_second" else "lighter"
    claim = f"L={length}: {LABELS[name]} {what} than {LABELS[other]}"
    if mine["status"] != "ok":
        return common.not_measured(claim, mine["status"])
    if theirs["status"] != "ok":
        return {
            "claim": claim,
            "verdict": f"holds: {LABELS[other]} {theirs['status']}, "
            f"{LABELS[name]} ran",
        }
    return {
        "claim": claim,
        **common.compare(mine[key], theirs[key], higher_is_better),
    }


def main(argv=None):
    argv, args = common.start(argv, NAME, __doc__, add_arguments)
    if args.worker is not None:
        result = run_worker(json.loads(args.worker))
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return result
    import keras

    lengths = args.lengths or list(QUICK_LENGTHS if args.quick else LENGTHS)
    num_layers = args.num_layers or (1 if args.quick else 4)
    hidden_dim = args.hidden_dim or (16 if args.quick else 128)
    warmup = args.warmup_steps or (1 if args.quick else 2)
    steps = args.steps or (2 if args.quick else 5)
    models = [m for m in MODELS if m in args.models]
    if "etsmlp" not in models:
        models.insert(0, "etsmlp")  # it sets the parameter count
    widths = matched_widths(models, hidden_dim, num_layers)
    backend = keras.backend.backend()
    runs = {m: {n: [] for n in lengths} for m in models}
    # Lengths outermost and models interleaved within each repeat, so
    # that a change of machine load affects every model alike.
    for length in lengths:
        for seed in args.seeds:
            for model in models:
                config = {
                    "model": model,
                    "length": length,
                    "seed": seed,
                    "hidden_dim": widths[model][0],
                    "num_layers": num_layers,
                    "warmup_steps": warmup,
                    "steps": steps,
                    "step_budget": args.step_budget,
                    "memory_cap_mb": args.memory_cap_mb,
                    "backend": backend,
                }
                run = measure(config, args.config_timeout)
                print(
                    f"{model} L={length} seed={seed}: {run['status']} "
                    f"{run.get('tokens_per_second', '')}",
                    flush=True,
                )
                runs[model][length].append(run)
    cells, rows = {}, []
    for model in models:
        cells[model] = {}
        for length in lengths:
            measured = runs[model][length]
            failures = [r["status"] for r in measured if r["status"] != "ok"]
            cell = {
                "status": failures[0] if failures else "ok",
                "tokens_per_second": _stat(measured, "tokens_per_second"),
                "peak_growth_mb": _stat(measured, "peak_growth_mb"),
                "peak_rss_mb": _stat(measured, "peak_rss_mb"),
                "runs": measured,
            }
            ok = [r for r in measured if r["status"] == "ok"]
            cell["num_parameters"] = ok[0]["num_parameters"] if ok else None
            cells[model][length] = cell
            rows.append(
                [
                    LABELS[model],
                    length,
                    widths[model][0],
                    widths[model][1],
                    cell["num_parameters"] or "-",
                    common.format_stat(cell["tokens_per_second"], 4)
                    if cell["tokens_per_second"]
                    else cell["status"],
                    common.format_stat(cell["peak_growth_mb"], 4)
                    if cell["peak_growth_mb"]
                    else cell["status"],
                ]
            )
    scaling = {}
    for model in models:
        means = {}
        for key in ("tokens_per_second", "peak_growth_mb"):
            values = [(cells[model][n][key] or {}).get("mean") for n in lengths]
            means[key] = scaling_exponent(lengths, values)
        scaling[model] = means
    verdicts = []
    for length in lengths:
        for other in ("transformer", "s4d"):
            if other not in models:
                continue
            verdicts.append(
                verdict_pair(
                    "etsmlp", other, length, "tokens_per_second", cells, True
                )
            )
            if other == "transformer":
                verdicts.append(
                    verdict_pair(
                        "etsmlp", other, length, "peak_growth_mb", cells, False
                    )
                )
    if "transformer" in models:
        verdicts.append(growth_verdict(scaling))
    result = {
        "experiment": NAME,
        "environment": common.environment(argv, NAME),
        "quick": args.quick,
        "seeds": args.seeds,
        "lengths": lengths,
        "batch_size": 1,
        "vocabulary_size": VOCABULARY,
        "num_layers": num_layers,
        "warmup_steps": warmup,
        "timed_steps": steps,
        "memory_cap_mb": args.memory_cap_mb,
        "widths": {
            m: {"hidden_dim": w, "matched_parameters": c}
            for m, (w, c) in widths.items()
        },
        "summary": cells,
        "scaling_exponents": scaling,
        "paper_claim": (
            "Figure 3 of Chu & Lin (2024): ETSMLP has the highest words per "
            "second at every length, flat in the length, while the "
            "Transformer's falls; the Transformer's memory grows about "
            "quadratically, ETSMLP's linearly; little difference below "
            f"{PAPER_SHORT_LENGTH} tokens."
        ),
        "timing_note": (
            "Timings and memory depend on the machine and its load; the "
            "environment records where and how this ran."
        ),
        "verdicts": verdicts,
    }

    def plot(figure):
        for index, (key, label) in enumerate(
            (
                ("tokens_per_second", "training tokens / s"),
                ("peak_growth_mb", "peak memory growth (MB)"),
            )
        ):
            axes = figure.add_subplot(1, 2, index + 1)
            for model in models:
                points = [
                    (n, cells[model][n][key])
                    for n in lengths
                    if cells[model][n][key]
                ]
                if not points:
                    continue
                common.errorbars(
                    axes,
                    [p[0] for p in points],
                    [p[1] for p in points],
                    marker="o",
                    capsize=3,
                    label=LABELS[model],
                )
            axes.set_xscale("log", base=2)
            axes.set_yscale("log")
            axes.set_xlabel("sequence length (batch 1)")
            axes.set_ylabel(label)
            axes.legend()

    return common.finish(
        args,
        "ETSMLP, S4D and Transformer: training speed and memory against length",
        result,
        [
            (
                "Training tokens per second and peak memory growth "
                f"(batch 1, {num_layers} layers; machine load applies)",
                [
                    "model",
                    "length",
                    "width",
                    "matched parameters",
                    "parameters (with position embedding)",
                    "tokens / s",
                    "peak memory growth (MB)",
                ],
                rows,
            ),
            (
                "Scaling exponents (slope of log value on log length)",
                ["model", "tokens / s", "peak memory growth"],
                [
                    [
                        LABELS[m],
                        _fmt(scaling[m]["tokens_per_second"]),
                        _fmt(scaling[m]["peak_growth_mb"]),
                    ]
                    for m in models
                ],
            ),
        ],
        plot,
    )


def _fmt(value):
    return "-" if value is None else f"{value:.2f}"


def growth_verdict(scaling):
    """Does the Transformer's memory grow faster with length than ETSMLP's?"""
    mine = scaling["etsmlp"]["peak_growth_mb"]
    theirs = scaling["transformer"]["peak_growth_mb"]
    claim = (
        "memory grows faster with length for the Transformer than for "
        "ETSMLP (scaling exponents)"
    )
    if mine is None or theirs is None:
        return common.not_measured(claim, "fewer than two lengths ran for both")
    holds = theirs > mine
    return {
        "claim": claim,
        "verdict": (
            f"{'holds' if holds else 'does not hold'}: exponent "
            f"{theirs:.2f} (Transformer) against {mine:.2f} (ETSMLP), from "
            "the means; no spread"
        ),
        "holds": holds,
    }


if __name__ == "__main__":
    main()
