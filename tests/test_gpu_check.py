"""The GPU check script: valid bash, a CPU dry run, rows for RESULTS.md."""

import json
import os
import subprocess

import keras
import pytest

from benchmarks import gpu_rows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.sh")


@pytest.mark.backend_independent
def test_script_is_valid_bash():
    result = subprocess.run(
        ["bash", "-n", SCRIPT], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.backend_independent
def test_unknown_argument_is_refused():
    result = subprocess.run(
        ["bash", SCRIPT, "--gpus", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--gpus" in result.stderr


@pytest.mark.backend_independent
def test_rows_name_device_date_and_every_result(tmp_path):
    run = {
        "backend": "torch",
        "device": "NVIDIA H100",
        "date": "2026-12-01",
        "hidden_dim": 256,
        "rows": [
            {
                "model": "s4d",
                "batch": 8,
                "length": 1024,
                "time_ms": 1.5,
                "memory_mb": 12.0,
            },
            {"model": "mamba", "batch": 32, "error": "CUDA out of memory"},
        ],
    }
    scan = {
        "backend": "torch",
        "device": "NVIDIA H100",
        "date": "2026-12-01",
        "benchmark": "log_linear_recurrence",
        "rows": [
            {
                "method": "chunked",
                "length": 4096,
                "seconds": 0.002,
                "speedup_vs_sequential": 40.0,
            },
        ],
    }
    (tmp_path / "run_torch_d256.json").write_text(json.dumps(run))
    (tmp_path / "scan_torch.json").write_text(json.dumps(scan))
    text = gpu_rows.markdown(str(tmp_path))
    assert text.startswith("## NVIDIA H100, 2026-12-01")
    assert "| torch | 256 | 8 | 1024 | s4d | 1.5 | 12 |" in text
    assert "CUDA out of memory" in text
    assert "| chunked | 4096 | 2 | 40 |" in text
    # Files written before 0.2.0 name the width `d_model`.
    run["d_model"] = run.pop("hidden_dim")
    (tmp_path / "run_torch_d256.json").write_text(json.dumps(run))
    assert gpu_rows.markdown(str(tmp_path)) == text


@pytest.mark.slow
def test_dry_run_on_cpu(tmp_path):
    backend = keras.backend.backend()
    # The script's steps are the same for every backend: one dry run per
    # CI run (KERAS_SSM_GPU_CHECK_ALL_BACKENDS=1 runs it under each).
    if backend != "torch" and not os.environ.get(
        "KERAS_SSM_GPU_CHECK_ALL_BACKENDS"
    ):
        pytest.skip("the dry run runs under the torch backend in CI")
    env = dict(os.environ, OUT=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [
            "bash",
            SCRIPT,
            "--dry-run",
            "--backends",
            backend,
            "--steps",
            "devices,tests,run,rows",
            "--budget",
            "280",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = (tmp_path / "summary.md").read_text()
    assert f"| tests_{backend} | ok |" in summary
    assert f"| run_{backend}_d8 | ok |" in summary
    rows = (tmp_path / "RESULTS_rows.md").read_text()
    assert f"| {backend} | 8 | 2 | 64 | s4d |" in rows
