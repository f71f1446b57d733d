"""The main job, measured: the README's ListOps command per backend and seed.

Runs `python -m applications.lra --task listops --model s4d --preset cpu`
once per backend and seed, each in its own process and one at a time (the
preset trains for a wall-clock budget, so nothing else may share the CPU),
then writes `summary.json` and `summary.md` to the output folder: test
accuracy, training seconds and epochs, mean +- std over the seeds, for each
backend, and whether mean - std reaches the target.

Example:

    python -m applications.lra.main_job --output-dir runs/main_job
    python -m applications.lra.main_job --backends torch --seeds 0 \\
        --output-dir runs/quick -- --max-train 64 --time-budget 5

Arguments after `--` go to every run of the CLI.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

from applications.common.arguments import BACKENDS
from applications.common.errors import run_cli
from applications.common.run_files import write_text

COMMAND = ("-m", "applications.lra", "--task", "listops", "--model", "s4d")
COMMAND += ("--preset", "cpu")


def parse_args(argv):
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    else:
        extra = []
    parser = argparse.ArgumentParser(
        prog="python -m applications.lra.main_job",
        description="The ListOps main job on each backend and seed.",
    )
    parser.add_argument(
        "--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS)
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--target-accuracy", type=float, default=0.60)
    parser.add_argument("--output-dir", required=True)
    args = parser.parse_args(argv)
    args.extra = extra
    return args


def run_folder(output_dir, backend, seed):
    return os.path.join(output_dir, f"{backend}-seed{seed}")


def run_once(output_dir, backend, seed, extra):
    """One run of the CLI in a fresh process; returns its result.json."""
    folder = run_folder(output_dir, backend, seed)
    command = [sys.executable, *COMMAND, "--backend", backend]
    command += ["--seed", str(seed), "--output-dir", folder, "--verbose", "2"]
    print("$", " ".join(command[1:] + list(extra)), flush=True)
    subprocess.run(command + list(extra), check=True)
    with open(os.path.join(folder, "result.json")) as f:
        return json.load(f)


def _stat(values):
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "values": values}


def summarize(results, target):
    """Per backend: accuracy, seconds and epochs over seeds; the verdict.

    Args:
        results: `{backend: [result.json dicts, one per seed]}`.
        target: the accuracy mean - std must reach.

    Returns:
        `{backend: {"test_accuracy": stat, "train_seconds": stat,
        "epochs_run": [...], "seeds": [...], "holds": bool}}`, where a
        stat is `{"mean", "std", "values"}` (sample std over seeds).
    """
    summary = {}
    for backend, runs in results.items():
        accuracy = _stat([float(r["test_accuracy"]) for r in runs])
        summary[backend] = {
            "test_accuracy": accuracy,
            "train_seconds": _stat([float(r["train_seconds"]) for r in runs]),
            "epochs_run": [int(r["epochs_run"]) for r in runs],
            "time_budget_seconds": runs[0].get("time_budget_seconds"),
            "seeds": [int(r["seed"]) for r in runs],
            "holds": accuracy["mean"] - accuracy["std"] >= target,
        }
    return summary


def markdown(summary, target):
    lines = [
        "| backend | test accuracy | mean - std | train seconds | epochs | "
        f"mean - std >= {target:g} |",
        "|---|---|---|---|---|---|",
    ]
    for backend, row in summary.items():
        acc, secs = row["test_accuracy"], row["train_seconds"]
        lines.append(
            f"| {backend} | {acc['mean']:.3f} +- {acc['std']:.3f} "
            f"({', '.join(f'{v:.3f}' for v in acc['values'])}) | "
            f"{acc['mean'] - acc['std']:.3f} | "
            f"{secs['mean']:.0f} +- {secs['std']:.0f} | "
            f"{', '.join(map(str, row['epochs_run']))} | "
            f"{'yes' if row['holds'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    os.makedirs(args.output_dir, exist_ok=True)
    results = {}
    for backend in args.backends:
        results[backend] = []
        for seed in args.seeds:
            result = run_once(args.output_dir, backend, seed, args.extra)
            result["seed"] = seed
            results[backend].append(result)
    summary = summarize(results, args.target_accuracy)
    record = {
        "command": "python " + " ".join(COMMAND),
        "extra_arguments": args.extra,
        "target_accuracy": args.target_accuracy,
        "summary": summary,
    }
    write_text(
        os.path.join(args.output_dir, "summary.json"),
        json.dumps(record, indent=2) + "\n",
    )
    table = markdown(summary, args.target_accuracy)
    write_text(os.path.join(args.output_dir, "summary.md"), table)
    print(table, end="")
    return summary


if __name__ == "__main__":
    run_cli(main)
