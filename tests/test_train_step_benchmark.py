"""benchmarks/bench_train_step.py: rows, ratios and arguments (quick mode)."""

import importlib.util
import json

import pytest

from benchmarks import bench_train_step

pytestmark = pytest.mark.backend_independent  # each worker picks a backend


def test_ratios_divide_by_the_reference_of_each_case():
    rows = [
        {"case": "s4d", "backend": "tensorflow", "length": 8, "step_ms": 2.0},
        {"case": "s4d", "backend": "torch", "length": 8, "step_ms": 3.0},
        {"case": "mamba", "backend": "mambapy", "length": 8, "step_ms": 4.0},
        {"case": "mamba", "backend": "jax", "length": 8, "step_ms": 1.0},
        {"case": "mamba", "backend": "jax", "length": 16, "step_ms": 1.0},
        {"case": "mamba", "backend": "torch", "error": "out of memory"},
    ]
    bench_train_step.add_ratios(rows)
    assert [row.get("ratio") for row in rows] == [
        1.0, 1.5, 1.0, 0.25, None, None
    ]  # fmt: skip


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cases", "lstm"], "--cases: unknown lstm"),
        (["--backends", "numpy"], "--backends: unknown numpy"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--lengths", "0"], "--lengths must be positive"),
    ],
)
def test_bad_arguments_are_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench_train_step.parse_args(argv)
    assert message in capsys.readouterr().err


def _worker_rows(capsys, backend, case):
    args = bench_train_step.parse_args(
        ["--worker", "--backend", backend, "--cases", case, "--quick"]
        + ["--repeats", "1"]
    )
    bench_train_step.worker(args)
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line[4:]) for line in lines if line.startswith("ROW ")]


@pytest.mark.parametrize("case", bench_train_step.CASES)
def test_worker_times_a_keras_training_step(capsys, case):
    import keras

    rows = _worker_rows(capsys, keras.backend.backend(), case)
    assert [(r["case"], r["length"]) for r in rows] == [
        (case, length) for length in bench_train_step.SHAPES[case]["quick"][2]
    ]
    assert all(r["step_ms"] > 0 for r in rows)


@pytest.mark.skipif(
    importlib.util.find_spec("mambapy") is None, reason="needs mambapy"
)
def test_worker_times_the_mambapy_reference(capsys):
    (row,) = _worker_rows(capsys, "mambapy", "mamba")
    assert row["backend"] == "mambapy" and row["step_ms"] > 0


@pytest.mark.slow  # one worker process
def test_main_writes_rows_with_ratios(tmp_path):
    output = tmp_path / "train_step.json"
    argv = ["--quick", "--cases", "s4d", "--backends", "torch"]
    assert bench_train_step.main(argv + ["--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert report["quick"] and len(report["load_average"]) == 3
    assert "bench_train_step.py --quick" in report["environment"]["command"]
    (row,) = report["rows"]
    assert row["case"] == "s4d" and row["backend"] == "torch"
    assert row["step_ms"] > 0 and "ratio" not in row  # no TensorFlow row
