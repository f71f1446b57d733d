"""The Mamba-2 benchmark rows: SSD chunk sizes and the block in run.py."""

import argparse
import json

from benchmarks import bench_ssd
from benchmarks import run


def test_ssd_benchmark_quick_mode_writes_rows(tmp_path):
    output = tmp_path / "ssd.json"
    assert bench_ssd.main(["--quick", "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    rows = report["rows"]
    assert [(r["length"], r["chunk"]) for r in rows] == [(32, 8)]
    assert all(r["seconds"] > 0 for r in rows)
    assert report["quick"] and len(report["load_average"]) == 3


def test_run_py_times_the_mamba2_block():
    assert "mamba2" in run.MODELS
    args = argparse.Namespace(
        lengths=[16, 32], hidden_dim=8, repeats=1, max_step_seconds=1e9
    )
    rows = list(run.worker_rows("mamba2", 1, args))
    assert [r["length"] for r in rows] == [16, 32]
    for row in rows:
        assert "error" not in row, row
        assert row["time_ms"] > 0 and row["memory_mb"] >= 0
