"""Tests of `applications.common.training` (the shared CLI plumbing)."""

import csv
import json
import os

import keras
import numpy as np
import pytest

from applications.common import training


def _tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def _history_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_backend_from_command_line_and_errors(monkeypatch):
    current = keras.backend.backend()
    monkeypatch.setenv("KERAS_BACKEND", current)
    assert training.select_backend(["--backend", current]) == current
    assert training.select_backend([f"--backend={current}"]) == current
    with pytest.raises(ValueError, match="--backend"):
        training.select_backend(["--backend", "numpyx"])
    other = next(b for b in training.BACKENDS if b != current)
    with pytest.raises(RuntimeError, match="before importing keras"):
        training.select_backend(["--backend", other])


@pytest.mark.backend_independent
def test_argument_defaults():
    import argparse

    parser = training.add_training_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--epochs", "3", "--resume"])
    assert args.epochs == 3 and args.resume and not args.data_parallel
    assert args.batch_size is None and args.verbose == 1


def test_fit_resumes_after_last_finished_epoch(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    paths = training.RunPaths(tmp_path / "run")

    model = _tiny_model()
    history, seconds = training.fit(
        model,
        (x, y),
        validation_data=(x, y),
        epochs=2,
        paths=paths,
        verbose=0,
    )
    assert len(history["loss"]) == 2 and seconds > 0
    assert os.path.exists(paths.best_model)
    assert os.path.exists(paths.last_model)
    assert paths.can_resume()
    trained = model.get_weights()

    # A fresh process rebuilds the model: the backup restores the weights
    # and the epoch, so asking for the 2 finished epochs trains nothing
    # and reports the run as it was...
    first_history = history
    resumed = _tiny_model()
    history, total = training.fit(
        resumed, (x, y), epochs=2, paths=paths, resume=True, verbose=0
    )
    assert history["loss"] == pytest.approx(first_history["loss"])
    assert total >= seconds
    for restored, expected in zip(resumed.get_weights(), trained):
        np.testing.assert_array_equal(restored, expected)
    # ... and asking for 3 runs only the third; the history is the whole
    # run's.
    history, _ = training.fit(
        resumed,
        (x, y),
        validation_data=(x, y),
        epochs=3,
        paths=paths,
        resume=True,
        verbose=0,
    )
    assert len(history["loss"]) == 3
    assert history["loss"][:2] == pytest.approx(first_history["loss"])
    rows = _history_rows(paths.history)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert float(rows[0]["epoch_seconds"]) > 0

    # Without --resume the run starts over and the history is rewritten.
    history, _ = training.fit(
        _tiny_model(), (x, y), epochs=1, paths=paths, verbose=0
    )
    assert len(history["loss"]) == 1
    assert len(_history_rows(paths.history)) == 1


def test_write_result_adds_metadata(tmp_path):
    path = str(tmp_path / "out" / "result.json")
    training.write_result(
        path, {"accuracy": np.float32(0.5), "curve": np.arange(3)}
    )
    with open(path) as f:
        result = json.load(f)
    assert result["accuracy"] == 0.5 and result["curve"] == [0, 1, 2]
    assert result["metadata"]["backend"] == keras.backend.backend()
    assert training.format_seconds(3725) == "1h 02m 05s"


def test_data_parallel_scope_off_is_a_no_op():
    with training.data_parallel_scope(False):
        model = _tiny_model()
    assert model.built


def test_fit_stops_and_raises_when_the_loss_becomes_nan():
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((8, 2), "float32")
    y = np.full((8, 1), np.nan, "float32")
    with pytest.raises(training.TrainingDivergedError, match="NaN"):
        training.fit(model, (x, y), epochs=3, verbose=0, batch_size=4)


@pytest.mark.backend_independent
def test_a_diverged_cli_run_exits_with_status_1(capsys):
    def main(argv):
        raise training.TrainingDivergedError("the loss became NaN")

    with pytest.raises(SystemExit) as exit_info:
        training.exit_on_divergence(main, [])
    assert exit_info.value.code == 1
    assert "NaN" in capsys.readouterr().err
