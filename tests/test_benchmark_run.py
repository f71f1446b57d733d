"""The benchmark entry point and the scan benchmark: arguments, scaling
fits and real rows."""

import argparse
import json

import pytest

from benchmarks import bench_scan
from benchmarks import run


@pytest.mark.backend_independent
def test_quick_preset_and_explicit_lengths():
    args = run.parse_args(["--quick"])
    assert args.quick and not args.isolate
    assert args.lengths == list(run.QUICK["lengths"])
    args = run.parse_args(["--lengths", "4096,1024", "--batches", "8"])
    assert args.lengths == [1024, 4096] and args.batches == [8]
    assert args.isolate and args.hidden_dim == 128


def test_d_model_is_a_deprecated_alias_of_hidden_dim(capsys):
    assert run.parse_args(["--hidden-dim", "64"]).hidden_dim == 64
    assert capsys.readouterr().err == ""
    assert run.parse_args(["--d-model", "64"]).hidden_dim == 64
    err = capsys.readouterr().err
    assert err == "warning: --d-model is deprecated: use --hidden-dim.\n"


@pytest.mark.backend_independent
def test_bad_arguments_fail_clearly():
    with pytest.raises(SystemExit):
        run.parse_args(["--models", "s4d,lstm"])
    with pytest.raises(SystemExit, match="--lengths"):
        run.parse_args(["--lengths", "0,128"])


@pytest.mark.backend_independent
def test_scaling_exponents_recover_linear_and_quadratic_growth():
    lengths = [1024, 2048, 4096, 8192]
    rows = [
        {"model": "ssm", "batch": 1, "length": n, "time_ms": 0.01 * n}
        | {"memory_mb": 0.5 * n}
        for n in lengths
    ] + [
        {"model": "attn", "batch": 1, "length": n, "time_ms": 1e-6 * n**2}
        | {"memory_mb": 1e-5 * n**2}
        for n in lengths
    ]
    rows.append({"model": "attn", "batch": 1, "length": 16384, "error": "OOM"})
    fits = {f["model"]: f for f in run.scaling_exponents(rows)}
    assert fits["ssm"]["time_exponent"] == pytest.approx(1.0)
    assert fits["attn"]["memory_exponent"] == pytest.approx(2.0)
    assert fits["attn"]["lengths"] == "1024-8192"


@pytest.mark.parametrize("model, batch", [("s4d", 2), ("mamba2", 1)])
def test_worker_times_a_block(model, batch):
    assert model in run.MODELS
    args = argparse.Namespace(
        lengths=[16, 32], hidden_dim=8, repeats=1, max_step_seconds=1e9
    )
    rows = list(run.worker_rows(model, batch, args))
    assert [r["length"] for r in rows] == [16, 32]
    for row in rows:
        assert "error" not in row, row
        assert row["time_ms"] > 0 and row["memory_mb"] >= 0


@pytest.mark.parametrize(
    "op, method",
    [("recurrence", "logspace"), ("selective", "streaming")],
)
def test_scan_benchmark_worker_times_each_op(op, method, capsys):
    args = argparse.Namespace(
        op=op,
        method=method,
        chunk_size=None,
        jit_compile=False,
        lengths=[16, 32],
        batch=1,
        channels=4,
        d_state=2,
        repeats=1,
        max_seconds=1e9,
    )
    bench_scan.worker(args)
    rows = [
        json.loads(line[4:])
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("ROW ")
    ]
    assert [r["length"] for r in rows] == [16, 32]
    for row in rows:
        assert row["error"] is None, row
        assert row["seconds"] > 0 and row["method"] == method
