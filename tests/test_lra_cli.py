"""`python -m applications.lra`: train, checkpoint, resume, JSON result."""

import csv
import json
import os

import keras
import pytest

from applications.lra import __main__ as cli


def _args(output_dir, *extra):
    return [
        "--backend", keras.backend.backend(),
        "--task", "listops", "--model", "s4d", "--preset", "cpu",
        "--max-train", "16", "--max-eval", "8", "--max-length", "24",
        "--depth", "1", "--hidden-dim", "8", "--batch-size", "8",
        "--output-dir", str(output_dir), "--verbose", "0", *extra,
    ]  # fmt: skip


def _python(code, env):
    """Runs `python -c code` from the repository root; returns the result."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_SSM_CACHE", str(tmp_path / "cache"))


def test_cli_trains_writes_results_and_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    accuracy = cli.main(_args(run, "--epochs", "1", "--lipschitz", "0.1"))
    assert "Test accuracy:" in capsys.readouterr().out
    with open(run / "result.json") as f:
        result = json.load(f)
    assert result["test_accuracy"] == pytest.approx(accuracy)
    assert result["lipschitz"] == 0.1 and result["num_train"] == 16
    assert result["metadata"]["backend"] == keras.backend.backend()
    for name in ("best.keras", "last.keras", "history.csv"):
        assert os.path.exists(run / name)
    restored = keras.saving.load_model(run / "last.keras")
    assert restored.backbone.get_layer("lipschitz").weight == pytest.approx(0.1)

    cli.main(_args(run, "--epochs", "2", "--lipschitz", "0.1", "--resume"))
    with open(run / "history.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1]  # epoch 0 was not trained again
    with open(run / "result.json") as f:
        resumed = json.load(f)
    # The whole run: both epochs and the time of both invocations.
    assert len(resumed["history"]["loss"]) == 2
    assert resumed["history"]["loss"][0] == result["history"]["loss"][0]
    assert resumed["train_seconds"] > result["train_seconds"]
    capsys.readouterr()

    # The same command again finds the run finished and leaves it alone.
    before = {n: (run / n).read_bytes() for n in ("result.json", "best.keras")}
    cli.main(_args(run, "--epochs", "2", "--lipschitz", "0.1", "--resume"))
    assert "left untouched" in capsys.readouterr().out
    for name, content in before.items():
        assert (run / name).read_bytes() == content


def test_cli_leaves_a_preset_folder_that_evaluates_alone(tmp_path, capsys):
    run = tmp_path / "run"
    accuracy = cli.main(_args(run, "--epochs", "1"))
    with open(run / "result.json") as f:
        assert json.load(f)["preset_folder"] == str(run / "preset")
    for name in ("config.json", "task.json", "metadata.json"):
        assert os.path.exists(run / "preset" / name)
    capsys.readouterr()
    again = cli.main(
        _args(tmp_path / "eval", "--evaluate-preset", str(run / "preset"))
    )
    assert "of the preset" in capsys.readouterr().out
    assert again == pytest.approx(accuracy, abs=1e-6)
    with pytest.raises(cli.training.UsageError, match="--evaluate-preset"):
        cli.main(
            _args(tmp_path / "x", "--evaluate-preset", str(tmp_path / "no"))
        )


def test_cli_trains_for_a_time_budget_and_leaves_it_finished(tmp_path, capsys):
    run = tmp_path / "run"
    cli.main(_args(run, "--time-budget", "2", "--max-train", "64"))
    out = capsys.readouterr().out
    assert "2s of training." in out.splitlines()[0]  # the plan, in the header
    with open(run / "result.json") as f:
        result = json.load(f)
    assert result["time_budget_seconds"] == 2.0 and result["stopped_early"]
    assert 2.0 <= result["train_seconds"] < 60
    assert result["epochs_run"] == len(result["history"]["learning_rate"])
    # The last rate is the schedule's end: 1% of the peak.
    peak = result["training_config"]["learning_rate"]
    assert result["history"]["learning_rate"][-1] < 0.5 * peak
    cli.main(_args(run, "--time-budget", "2", "--resume"))
    assert "left untouched" in capsys.readouterr().out


def test_cli_rejects_unknown_choices(tmp_path):
    with pytest.raises(SystemExit):
        cli.main(_args(tmp_path, "--model", "lstm"))


def test_backend_flag_works_from_a_fresh_process():
    """The package import must not import Keras before `--backend`."""
    other = {"jax": "torch", "tensorflow": "jax", "torch": "jax"}
    backend = other[keras.backend.backend()]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    code = (
        "import sys; from applications.lra.__main__ import main; "
        f"sys.argv = ['lra', '--backend', '{backend}', '--help']; main()"
    )
    result = _python(code, env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--task" in result.stdout and "--data-parallel" in result.stdout


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--epochs", "0", "must be >= 1"),
        ("--epochs", "-1", "must be >= 1"),
        ("--learning-rate", "nan", "finite"),
        ("--learning-rate", "-0.1", "must be > 0"),
        ("--batch-size", "0", "must be >= 1"),
        ("--batch-size", "-4", "must be >= 1"),
        ("--max-length", "-5", "must be >= 1"),
        ("--depth", "x", "integer"),
        ("--time-budget", "-1", "must be >= 0"),
    ],
)
def test_cli_refuses_bad_values_when_parsing(flag, value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(["--task", "listops", "--model", "s4d", flag, value])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {flag}: {message}" in error or message in error


@pytest.mark.backend_independent  # the subprocess runs TensorFlow
def test_tensorflow_start_up_notices_are_hidden_from_cli_users():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")
    }
    code = (
        "from applications.common import training; "
        "training.select_backend(['--backend', 'tensorflow']); "
        "import keras; print(keras.ops.ones(2).shape)"
    )
    result = _python(code, env)
    assert result.returncode == 0, result.stderr[-2000:]
    for notice in ("oneDNN", "cuInit", "cuda drivers", "absl::InitializeLog"):
        assert notice not in result.stderr, result.stderr[-2000:]


@pytest.mark.backend_independent  # the subprocess picks its backend
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_only_the_chosen_backend_framework_is_imported(tmp_path, backend):
    """Under JAX or PyTorch a CLI run leaves TensorFlow unimported."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_SSM_CACHE"] = str(tmp_path / "cache")
    argv = _args(tmp_path / "run", "--epochs", "1")
    argv[1] = backend
    code = (
        "import sys; from applications.lra.__main__ import main; "
        f"main({argv!r}); "
        "print('tensorflow imported:', 'tensorflow' in sys.modules)"
    )
    result = _python(code, env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tensorflow imported: False" in result.stdout, result.stdout


def test_d_model_is_a_deprecated_alias_of_hidden_dim(capsys):
    base = ["--task", "listops", "--model", "s4d"]
    assert cli.parse_args(base + ["--hidden-dim", "8"]).hidden_dim == 8
    assert capsys.readouterr().err == ""
    assert cli.parse_args(base + ["--d-model", "8"]).hidden_dim == 8
    err = capsys.readouterr().err
    assert err == "warning: --d-model is deprecated: use --hidden-dim.\n"
    with pytest.raises(SystemExit):
        cli.parse_args(base + ["--d-model", "0"])
    assert "argument --d-model: must be >= 1" in capsys.readouterr().err
