"""`python -m applications.lra.main_job`: runs per backend and seed, summary."""

import json
import os

import pytest

from applications.lra import main_job


def _result(accuracy, seconds=300.0, epochs=9):
    return {
        "test_accuracy": accuracy,
        "train_seconds": seconds,
        "epochs_run": epochs,
        "time_budget_seconds": 300.0,
    }


@pytest.mark.backend_independent
def test_summary_takes_mean_and_sample_std_per_backend_and_judges_it():
    def seeds(*accuracies):
        return [dict(_result(a), seed=s) for s, a in enumerate(accuracies)]

    runs = {"jax": seeds(0.6, 0.62, 0.64), "torch": seeds(0.58, 0.6, 0.62)}
    summary = main_job.summarize(runs, target=0.6)
    assert summary["jax"]["test_accuracy"]["mean"] == pytest.approx(0.62)
    assert summary["jax"]["test_accuracy"]["std"] == pytest.approx(0.02)
    assert summary["jax"]["holds"] and not summary["torch"]["holds"]
    assert summary["torch"]["seeds"] == [0, 1, 2]
    table = main_job.markdown(summary, 0.6)
    assert "| jax | 0.620 +- 0.020 (0.600, 0.620, 0.640) | 0.600 |" in table
    assert table.rstrip().endswith("| no |")


@pytest.mark.backend_independent  # the runs are subprocesses under PyTorch
def test_runs_the_cli_per_seed_and_writes_the_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_SSM_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "job"
    tiny = ["--max-train", "32", "--max-eval", "8", "--max-length", "16",
            "--depth", "1", "--hidden-dim", "8", "--batch-size", "8",
            "--time-budget", "1"]  # fmt: skip
    summary = main_job.main(
        [
            "--backends",
            "torch",
            "--seeds",
            "3",
            "--output-dir",
            str(out),
            "--",
            *tiny,
        ]  # fmt: skip
    )
    assert summary["torch"]["seeds"] == [3]
    assert summary["torch"]["test_accuracy"]["std"] == 0.0
    with open(out / "summary.json") as f:
        record = json.load(f)
    assert record["extra_arguments"] == tiny
    assert record["summary"]["torch"]["time_budget_seconds"] == 1.0
    with open(out / "torch-seed3" / "result.json") as f:
        result = json.load(f)
    assert result["metadata"]["backend"] == "torch" and result["stopped_early"]
    assert os.path.exists(out / "summary.md")
