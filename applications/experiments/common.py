"""What every experiment shares: options, seeds, statistics and outputs.

An experiment compares quantities measured over several seeds. Each is
reported as mean +- standard deviation (sample std, ddof=1; 0 for a single
seed), and an effect "holds" when the difference of two means is larger
than their combined spread, sqrt(std_a^2 + std_b^2). Results go to an
output directory as `result.json` (everything, with the date, hardware,
backend and exact command), `result.md` (the tables) and `result.png` (the
plot, drawn with matplotlib's Agg backend).
"""

import argparse
import math
import os
import sys

import numpy as np

from applications.common import training
from applications.common.arguments import add_backend_argument
from applications.common.arguments import positive_int
from applications.common.results import write_json
from applications.common.run_files import atomic_path
from applications.common.run_files import write_text

OUTPUT_FILES = ("result.json", "result.md", "result.png")
# The ListOps size of the experiments that train dozens of models (the
# Lipschitz lambda grid, the ETSMLP ablations): a quarter of the main job's
# expressions, 2 x 64 models and 5 epochs, so one training takes about a
# minute instead of the main job's five.
SMALL_LISTOPS_TRAIN = 4000
SMALL_LISTOPS_BACKBONE = {"num_layers": 2, "hidden_dim": 64}
SMALL_LISTOPS_INTERMEDIATE_DIM = 128
SMALL_LISTOPS_EPOCHS = 5
SMALL_LISTOPS_LEARNING_RATE = {"transformer": 0.001, "default": 0.003}


def parse_args(name, description, argv=None, add_arguments=None):
    """The options every experiment takes, plus its own.

    Args:
        name: the experiment's module name (default output directory).
        description: one line for `--help`.
        argv: the arguments (default `sys.argv[1:]`).
        add_arguments: optional function adding options to the parser.

    Returns:
        The parsed `argparse.Namespace`, with `seeds` filled in (the
        default is (0, 1, 2), (0,) in quick mode) and `output_dir`.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m applications.experiments.{name}",
        description=description,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Tiny sizes and one seed: checks the pipeline in seconds.",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="Seeds to repeat every measurement with (default 0 1 2; 0 "
        "with --quick).",
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help=f"Where to write {', '.join(OUTPUT_FILES)} (default "
        f"runs/experiments/{name}).",
    )
    add_backend_argument(parser)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2]
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds must be distinct, got {args.seeds}.")
    args.output_dir = args.output_dir or os.path.join(
        "runs", "experiments", name
    )
    return args


def add_jobs_argument(parser):
    """`--jobs`: how many trainings `map_runs` runs at a time."""
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="Trainings at a time, each in its own process pinned to one "
        "core (default 1; 2 on a 2-core machine halves the wall time).",
    )


def add_task_arguments(parser, tasks, horizons):
    """`--tasks` (default all of `tasks`) and `--horizons` (of ETTh1)."""
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=tasks,
        default=list(tasks),
        help="Tasks to run (default both).",
    )
    parser.add_argument(
        "--horizons",
        type=int,
        nargs="+",
        default=None,
        help=f"ETTh1 horizons (default {horizons}).",
    )


def start(argv, name, doc, add_arguments=None):
    """Selects the backend before Keras is imported, then parses `argv`.

    Args:
        argv: the arguments (None: `sys.argv[1:]`).
        name: the experiment's module name.
        doc: the experiment's module docstring; its first line is the
            description of `--help`.
        add_arguments: optional function adding the experiment's options.

    Returns:
        `(argv, args)`: the argument list and the `parse_args` options.

    Example:

        argv, args = common.start(argv, NAME, __doc__, add_arguments)
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    training.select_backend(argv)
    description = doc.strip().splitlines()[0]
    return argv, parse_args(name, description, argv, add_arguments)


def _start_worker(cores):
    """Process-pool initializer: one core first, then the backend.

    The order matters: the backends size their thread pools from the
    cores the process may use when they are imported, so a worker pinned
    after the import would run several threads on its one core.
    """
    core = cores.get()
    if core is not None:
        os.sched_setaffinity(0, {core})
    training.select_backend([])


def map_runs(function, calls, jobs=1):
    """`[function(*call) for call in calls]`, in `jobs` processes.

    With `jobs` > 1 the calls run in a pool of fresh (spawned) processes,
    each pinned to its own core where the platform allows it, so that two
    timed trainings on a 2-core machine each get one core, as a single
    run under `taskset -c 0` does. The results come back in the order of
    `calls`.

    Args:
        function: a module-level function (it is pickled by name).
        calls: a list of argument tuples.
        jobs: number of processes; 1 runs the calls here, one by one.

    Returns:
        The list of results.

    Example:

        runs = map_runs(run_one, [("s4d", 0, args), ("s4d", 1, args)], 2)
    """
    import concurrent.futures
    import multiprocessing

    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"`jobs` must be a positive integer, got {jobs!r}.")
    calls = [tuple(call) for call in calls]
    if jobs == 1:
        return [function(*call) for call in calls]
    context = multiprocessing.get_context("spawn")
    # The cores to pin the workers to, in turn (None: no pinning here).
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
    else:
        available = [None]
    cores = context.Queue()
    for i in range(jobs):
        cores.put(available[i % len(available)])
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=_start_worker,
        initargs=(cores,),
    ) as pool:
        futures = [pool.submit(function, *call) for call in calls]
        return [future.result() for future in futures]


def summarize(values):
    """Mean and spread of one quantity over seeds.

    Args:
        values: the per-seed measurements (finite numbers).

    Returns:
        A dict with `mean`, `std` (sample std, 0 for one value), `n` and
        `values`.

    Example:

    >>> summarize([1.0, 2.0, 3.0])["std"]
    1.0
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("`values` must hold at least one measurement.")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"`values` must be finite, got {values}.")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {
        "mean": float(np.mean(values)),
        "std": std,
        "n": len(values),
        "values": values,
    }


def compare(a, b, higher_is_better=True, min_difference=0.0):
    """Whether `a` beats `b` by more than their combined spread.

    Args:
        a: a `summarize` dict (the candidate).
        b: a `summarize` dict (the reference).
        higher_is_better: direction of improvement.
        min_difference: a difference at most this large is no effect even
            when the spread is smaller (round-off between quantities that
            are equal in exact arithmetic, measured on a single seed).

    Returns:
        A dict with `difference` (mean_a - mean_b), `spread`
        (sqrt(std_a^2 + std_b^2)), `holds` (the difference exceeds the
        spread in the better direction), `verdict` (a sentence) and
        `seeds_enough` (both measured on at least 3 seeds; with fewer, a
        holding effect is not evidence).

    Example:

    >>> compare(summarize([3.0, 3.1, 2.9]), summarize([1.0, 1.1, 0.9]))[
    ...     "holds"
    ... ]
    True
    """
    difference = a["mean"] - b["mean"]
    spread = max(
        math.sqrt(a["std"] ** 2 + b["std"] ** 2), float(min_difference)
    )
    signed = difference if higher_is_better else -difference
    holds = bool(signed > spread)
    enough = min(a["n"], b["n"]) >= 3
    if holds:
        verdict = "effect holds (difference larger than the spread)"
    elif abs(difference) > spread:
        verdict = "opposite effect (difference larger than the spread)"
    else:
        verdict = "no effect beyond the spread"
    if not enough:
        verdict += "; fewer than 3 seeds, not evidence"
    return {
        "difference": float(difference),
        "spread": float(spread),
        "holds": holds,
        "verdict": verdict,
        "seeds_enough": enough,
    }


def not_measured(claim, reason):
    """The verdict of a claim that could not be measured, and why.

    Args:
        claim: the claim, as in the other verdicts.
        reason: why it was not measured (e.g. absent data).

    Returns:
        A verdict dict: `{"claim": claim, "verdict": "not measured: ..."}`.
    """
    return {"claim": claim, "verdict": f"not measured: {reason}"}


def finite(*values):
    """Whether every value is a finite number (None is not)."""
    return all(v is not None and math.isfinite(v) for v in values)


def format_stat(stat, digits=4):
    """`mean +- std (n=...)` of a `summarize` dict."""
    return (
        f"{stat['mean']:.{digits}g} +- {stat['std']:.{digits}g} (n={stat['n']})"
    )


def environment(argv, name):
    """Date, hardware, backend and the exact command of a run.

    `applications.common.results.environment` with the experiment's
    command line.
    """
    from applications.common.results import environment as run_environment

    return run_environment(
        ["python", "-m", f"applications.experiments.{name}", *argv]
    )


def markdown_table(header, rows):
    """A Markdown table of `rows` (lists of cells) under `header`."""
    lines = [
        "| " + " | ".join(str(h) for h in header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def write_outputs(output_dir, title, result, tables, plot):
    """Writes `result.json`, `result.md` and `result.png`.

    Args:
        output_dir: the directory (created if needed).
        title: the Markdown heading.
        result: the JSON-able dict of everything measured; it must hold
            `environment` and `verdicts` (a list of dicts with `claim` and
            `verdict`).
        tables: list of `(caption, header, rows)` for the Markdown file.
        plot: function `plot(figure)` drawing onto a matplotlib figure.

    Returns:
        The paths written, in the order of `OUTPUT_FILES`.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    for key in ("environment", "verdicts"):
        if key not in result:
            raise ValueError(f"`result` must hold {key!r}.")
    os.makedirs(output_dir, exist_ok=True)
    paths = [os.path.join(output_dir, f) for f in OUTPUT_FILES]
    write_json(paths[0], result)
    env = result["environment"]
    lines = [
        f"# {title}",
        "",
        f"- Date: {env['date']}",
        f"- Hardware: {env['platform']}, {env['cpu_count']} CPUs",
        f"- Backend: {env['backend']} (Keras {env['keras']})",
        f"- Command: `{env['command']}`",
        "",
    ]
    for caption, header, rows in tables:
        lines += [f"## {caption}", "", markdown_table(header, rows), ""]
    lines += ["## Verdicts", ""]
    for item in result["verdicts"]:
        lines.append(f"- {item['claim']}: **{item['verdict']}**")
    write_text(paths[1], "\n".join(lines) + "\n")
    figure = plt.figure(figsize=(8, 5))
    try:
        plot(figure)
        figure.tight_layout()
        with atomic_path(paths[2]) as partial:
            figure.savefig(partial, dpi=100, format="png")
    finally:
        plt.close(figure)
    return paths


def finish(args, title, result, tables, plot):
    """`write_outputs` into `args.output_dir`, then says where.

    Returns:
        `result`.
    """
    write_outputs(args.output_dir, title, result, tables, plot)
    print(f"Results written to {args.output_dir}")
    return result


def small_listops(model_name):
    """A `*_listops_cpu` preset at the small ListOps size.

    Args:
        model_name: the preset's backbone, e.g. "s4d" or "transformer".

    Returns:
        `(data, training, backbone)`: the preset's data and training dicts
        with the small sizes, and the backbone arguments to pass to
        `SSMClassifier.from_preset`.
    """
    from keras_ssm.models import get_preset

    preset = get_preset(f"{model_name}_listops_cpu")
    data = dict(preset["data"], num_train=SMALL_LISTOPS_TRAIN)
    training = dict(
        preset["training"],
        epochs=SMALL_LISTOPS_EPOCHS,
        learning_rate=SMALL_LISTOPS_LEARNING_RATE.get(
            model_name, SMALL_LISTOPS_LEARNING_RATE["default"]
        ),
    )
    backbone = dict(SMALL_LISTOPS_BACKBONE)
    if "intermediate_dim" in preset["model"]["config"]["backbone"]:
        backbone["intermediate_dim"] = SMALL_LISTOPS_INTERMEDIATE_DIM
    return data, training, backbone


def quick_listops(data, training, num_validation=32):
    """Shrinks a ListOps preset's data and training to `--quick` size.

    Args:
        data: the preset's data dict, updated in place (64 training
            expressions of at most 32 tokens).
        training: the preset's training dict, updated in place (one epoch
            of batches of 16).
        num_validation: the validation expressions to keep.

    Returns:
        The backbone overrides of the quick size (one layer, width 16).
    """
    data.update(
        num_train=64,
        num_validation=num_validation,
        num_test=32,
        max_length=32,
    )
    data["min_length"] = min(data["min_length"], 32)
    training.update(epochs=1, batch_size=16)
    return {"num_layers": 1, "hidden_dim": 16}


def small_listops_setup(model_name, quick, epochs):
    """The splits of `small_listops(model_name)`, ready to train.

    Args:
        model_name: the preset's backbone, e.g. "s4d".
        quick: shrink everything to `quick_listops`'s size.
        epochs: the epochs to train outside quick mode.

    Returns:
        `(splits, training, overrides)`: the (train, validation, test)
        arrays, the training dict and the backbone overrides (with the
        `sequence_length` of the data).
    """
    from keras_ssm import datasets

    data, training, overrides = small_listops(model_name)
    if quick:
        overrides = quick_listops(data, training)
    else:
        training["epochs"] = epochs
    overrides["sequence_length"] = data["max_length"]
    splits = datasets.load_preset_data(data, seed=0)
    return splits, training, overrides


def reshuffled(windows, seed):
    """A copy of ETT training `windows` shuffled by `seed` alone.

    A fresh shuffle per run: the batch order depends on the seed only, not
    on the runs trained on the same windows before it. The last, smaller
    batch of each epoch is left out (one batch shape).

    Args:
        windows: a `keras_ssm.datasets.ett.ForecastWindows`.
        seed: the shuffling seed.

    Returns:
        A `ForecastWindows` over the same rows.
    """
    from keras_ssm.datasets.ett import ForecastWindows

    return ForecastWindows(
        windows.values,
        windows.targets,
        input_size=windows.input_size,
        h=windows.h,
        batch_size=windows.batch_size,
        drop_remainder=True,
        shuffle=True,
        seed=seed,
    )


def errorbars(axes, positions, stats, **kwargs):
    """Draws `summarize` dicts as mean +- std error bars on `axes`.

    Args:
        axes: a matplotlib `Axes`.
        positions: the x position of each dict.
        stats: the `summarize` dicts.
        **kwargs: passed to `axes.errorbar` (`fmt`, `capsize`, ...).
    """
    axes.errorbar(
        list(positions),
        [s["mean"] for s in stats],
        yerr=[s["std"] for s in stats],
        **kwargs,
    )


def fit_preset(model, training_settings, x, y, budget=None, **fit_kwargs):
    """Compile a task model with a preset's training settings and fit it.

    The learning-rate schedule spans `training_settings["epochs"]` epochs of
    ceil(len(y) / batch_size) steps, the same count `fit` takes, so the
    schedule ends with the last batch. With a `budget` (an
    `applications.common.time_budget.WallClockBudget` made from the same
    settings) the schedule spans the budget's seconds instead, and the
    epochs are only a cap. A diverged run is not stopped: the experiments
    record it as it is.

    Args:
        model: an `SSMClassifier` (or any model with `compile_from_preset`).
        training_settings: the preset's training dict (`batch_size`,
            `epochs`, ...).
        x: training inputs.
        y: training targets.
        budget: optional `WallClockBudget` that drives the rate and ends
            training.
        **fit_kwargs: passed to `applications.common.fitting.fit` (e.g.
            `validation_data`, `callbacks`).

    Returns:
        `(history, seconds)`: the history dict and the wall-clock seconds.

    Example:

        history, seconds = fit_preset(model, training, x_train, y_train)
    """
    from applications.common import time_budget

    batch_size = training_settings["batch_size"]
    epochs = training_settings["epochs"]
    callbacks = list(fit_kwargs.pop("callbacks", ()))
    if budget is not None:
        training_settings = time_budget.budget_compile_settings(
            training_settings
        )
        callbacks.append(budget)
    model.compile_from_preset(
        training_settings,
        steps_per_epoch=-(-len(y) // batch_size),
        epochs=epochs,
    )
    return training.fit(
        model,
        (x, y),
        epochs=epochs,
        callbacks=callbacks,
        batch_size=batch_size,
        verbose=0,
        stop_on_nan=False,
        **fit_kwargs,
    )
