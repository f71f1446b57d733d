"""The SSD benchmark rows (the Mamba-2 block row: test_benchmark_run)."""

import json

from benchmarks import bench_ssd


def test_ssd_benchmark_quick_mode_writes_rows(tmp_path):
    output = tmp_path / "ssd.json"
    assert bench_ssd.main(["--quick", "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    rows = report["rows"]
    assert [(r["length"], r["chunk"]) for r in rows] == [(32, 8)]
    assert all(r["seconds"] > 0 for r in rows)
    assert report["quick"] and len(report["load_average"]) == 3
