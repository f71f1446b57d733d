"""The forecasting command line, end to end on a small synthetic ETTh1."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from applications.forecasting import cli
from applications.forecasting.report import POSTER_ETTH1_S_MSE
from applications.forecasting.report import results_table


def write_ett_hour_csv(directory, rows=14400):
    """An ETTh1-shaped CSV (date, two loads, OT): smooth daily cycles."""
    t = np.arange(rows)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "date": pd.date_range(
                "2016-07-01", periods=rows, freq="h"
            ).strftime("%Y-%m-%d %H:%M:%S"),
            "HUFL": np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=rows),
            "MUFL": np.cos(2 * np.pi * t / 24),
            "OT": np.sin(2 * np.pi * t / 24 + 0.5) + 0.01 * t / 24,
        }
    )
    path = os.path.join(directory, "ETTh1.csv")
    frame.to_csv(path, index=False)
    return path


def test_cli_trains_evaluates_and_writes_outputs(tmp_path, capsys):
    write_ett_hour_csv(str(tmp_path))
    out = tmp_path / "runs"
    argv = [
        "--data",
        "ETTh1",
        "--features",
        "MS",
        "--horizon",
        "4",
        "--input-size",
        "16",
        "--model",
        "s4d",
        "--hidden-dim",
        "8",
        "--num-layers",
        "1",
        "--d-state",
        "4",
        "--epochs",
        "2",
        "--steps-per-epoch",
        "3",
        "--batch-size",
        "16",
        "--verbose",
        "0",
        "--lipschitz",
        "0.01",
        "--plot-windows",
        "2",
        "--data-dir",
        str(tmp_path),
        "--no-download",
        "--output-dir",
        str(out),
    ]
    assert cli.main(argv) == 0
    run = out / "ETTh1_MS_s4d_lip0.01" / "h4"
    result = json.loads((run / "result.json").read_text())
    assert result["config"]["features"] == "MS"
    assert result["config"]["hidden_dim"] == 8
    assert result["lipschitz_weight"] == pytest.approx(0.01)
    assert result["windows"] == {
        "train": 8640 - 16 - 4 + 1,
        "val": 2880 - 4 + 1,
        "test": 2880 - 4 + 1,
    }
    assert result["borders"]["test"] == [11520 - 16, 14400]
    assert result["epochs_run"] == 2
    assert np.isfinite(result["test_mse"]) and result["test_mse"] > 0
    assert result["test_mae"] ** 2 <= result["test_mse"] + 1e-9
    # The schedule decays lambda over the optimizer steps.
    weights = result["history"]["lipschitz_weight"]
    assert 0 < weights[-1] < weights[0] <= 0.01
    assert (run / "history.csv").exists()
    assert (run / "forecast.png").read_bytes()[:4] == b"\x89PNG"
    assert "| 4 |" in capsys.readouterr().out
    # The trained model is left as a preset folder with its scaler: the
    # reloaded model forecasts raw values (the CSV's training rows).
    import keras_ssm

    assert result["preset_folder"] == str(run / "preset")
    reloaded = keras_ssm.models.from_preset(str(run / "preset"))
    raw = pd.read_csv(tmp_path / "ETTh1.csv").iloc[:, 1:].to_numpy()
    np.testing.assert_allclose(
        reloaded.scaler.mean, raw[:8640].mean(axis=0), rtol=1e-6
    )
    forecast = np.asarray(reloaded.forecast(raw[None, 100:116]))
    assert forecast.shape == (1, 4, 1) and np.all(np.isfinite(forecast))


def test_all_horizons_loop_and_table(monkeypatch, tmp_path, capsys):
    seen = []

    def fake_run(config, output_dir, **kwargs):
        seen.append((config.horizon, output_dir))
        return {
            "config": {
                "model": config.model,
                "horizon": config.horizon,
                "lipschitz": config.lipschitz,
            },
            "test_mse": 0.001 * config.horizon / 24,
            "test_mae": 0.1,
            "epochs_run": 1,
            "train_seconds": 1.0,
        }

    monkeypatch.setattr(cli, "run_forecast", fake_run)
    cli.main(
        [
            "--data",
            "ETTh1",
            "--all-horizons",
            "--model",
            "etsmlp",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert [h for h, _ in seen] == [24, 48, 168, 336, 720]
    assert seen[0][1].endswith(os.path.join("ETTh1_S_etsmlp", "h24"))
    table = capsys.readouterr().out
    assert "| Transformer | Transformer+Lip | Informer | Informer+Lip |" in (
        table
    )
    assert "| 720 | 0.6559 | 0.6223 | 0.2688 | 0.1313 | **0.0300** |" in table
    seen.clear()
    monkeypatch.setattr(cli, "run_forecast", fake_run)
    cli.main(
        ["--data", "ETTm2", "--all-horizons", "--output-dir", str(tmp_path)]
    )
    assert [h for h, _ in seen] == [24, 48, 96, 288, 672]


def test_results_table_marks_the_best_value():
    results = [
        {
            "config": {"model": "s4d", "horizon": 24, "lipschitz": 0.0},
            "test_mse": 0.05,
        },
        {
            "config": {"model": "s4d", "horizon": 24, "lipschitz": 0.01},
            "test_mse": 0.08,
        },
    ]
    table = results_table(results)
    row = [line for line in table.splitlines() if line.startswith("| 24 ")]
    assert row == [
        "| 24 | 0.0705 | 0.0702 | 0.0984 | 0.0888 | **0.0500** | 0.0800 |"
    ]
    assert set(POSTER_ETTH1_S_MSE["Informer+Lip"]) == {24, 48, 168, 336, 720}


@pytest.fixture(scope="module")
def ett_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ett")
    write_ett_hour_csv(str(directory))
    (directory / "a_file").write_text("x")
    return directory


def _run_cli(argv, capsys):
    from applications.common import training

    with pytest.raises(SystemExit) as info:
        training.run_cli(cli.main, argv)
    err = capsys.readouterr().err
    return info.value.code, err


@pytest.mark.parametrize(
    "extra, names",
    [
        (["--data", "foo"], ["--data", "foo"]),
        (["--horizon", "20000"], ["--horizon 20000"]),
        (["--input-size", "20000"], ["--input-size 20000"]),
        (["--target", "XX", "--features", "MS"], ["--target XX", "'XX'"]),
        (["--cache-dir", "{dir}/a_file"], ["--cache-dir", "a_file"]),
        (["--output-dir", "{dir}/a_file"], ["--output-dir", "is a file"]),
        (["--output-dir", "{dir}/a_file/run"], ["--output-dir", "under"]),
        (["--output-dir", "/proc/no_such/run"], ["--output-dir", "write"]),
        (["--data-dir", "{dir}/none"], ["--data-dir", "none"]),
    ],
)
def test_cli_errors_are_one_line_naming_the_argument(
    ett_dir, tmp_path, capsys, extra, names
):
    argv = [
        "--data-dir", str(ett_dir), "--no-download", "--horizon", "4",
        "--input-size", "16", "--hidden-dim", "8", "--num-layers", "1",
        "--epochs", "1", "--steps-per-epoch", "1", "--verbose", "0",
        "--output-dir", str(tmp_path / "runs"),
    ] + [a.replace("{dir}", str(ett_dir)) for a in extra]  # fmt: skip
    code, err = _run_cli(argv, capsys)
    assert code == 2
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in err, err
    # Nothing was trained or written for a refused run.
    assert not (tmp_path / "runs").exists() or not any(
        (tmp_path / "runs").rglob("result.json")
    )


def test_a_failed_download_is_one_line(tmp_path, capsys, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.delenv("KERAS_SSM_DATA", raising=False)
    code, err = _run_cli(
        [
            "--data",
            "ETTm2",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--output-dir",
            str(tmp_path / "runs"),
            "--epochs",
            "1",
        ],  # fmt: skip
        capsys,
    )
    assert code != 0 and err.count("\n") == 1 and "Traceback" not in err
    assert "ETTm2" in err and "--data" in err


def test_debug_shows_the_traceback(ett_dir, tmp_path):
    from applications.common import training

    with pytest.raises(training.UsageError, match="--data"):
        training.run_cli(
            cli.main,
            ["--data", "foo", "--data-dir", str(ett_dir), "--no-download",
             "--output-dir", str(tmp_path), "--debug"],
        )  # fmt: skip


def test_d_model_is_a_deprecated_alias_of_hidden_dim(capsys):
    from applications.forecasting.experiment import ForecastConfig

    parser = cli.make_parser()
    new = cli.config_from_args(parser.parse_args(["--hidden-dim", "8"]), 24)
    assert capsys.readouterr().err == ""
    old = cli.config_from_args(parser.parse_args(["--d-model", "8"]), 24)
    err = capsys.readouterr().err
    assert err == "warning: --d-model is deprecated: use --hidden-dim.\n"
    assert new == old and new.hidden_dim == 8
    assert "--d-model" not in parser.format_help()
    # The result JSON of earlier runs holds `d_model` in its config.
    with pytest.warns(DeprecationWarning, match="`d_model`.*`hidden_dim`"):
        assert ForecastConfig(d_model=8) == ForecastConfig(hidden_dim=8)
    with pytest.raises(ValueError, match="`hidden_dim`.*`d_model`"):
        ForecastConfig(d_model=8, hidden_dim=8)
