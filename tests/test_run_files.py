"""Run files under faults: atomic writes, damaged backups, resume, checks."""

import json
import os

import keras
import numpy as np
import pytest

from applications.common import checkpoints
from applications.common import results
from applications.common import run_files
from applications.common import training


def _tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    return x, x @ np.array([[1.0], [-2.0], [0.5]], "float32")


RUN_FILES = {
    "best.keras", "last.keras", "history.csv", "backup", "progress.json",
    "latest.weights.h5", "training_metadata.json",
}  # fmt: skip


def _leftovers(directory):
    """Files that are none of a run's own: temporary files left behind."""
    return sorted(set(os.listdir(directory)) - RUN_FILES)


@pytest.mark.backend_independent
def test_a_write_failing_mid_way_keeps_the_previous_file(tmp_path):
    target = tmp_path / "result.json"
    results.write_json(target, {"accuracy": 0.5})
    with pytest.raises(OSError, match="disk full"):
        with run_files.atomic_path(str(target)) as partial:
            with open(partial, "w") as f:
                f.write('{"accur')  # half written, then the fault
            raise OSError("disk full")
    assert json.loads(target.read_text()) == {"accuracy": 0.5}
    assert os.listdir(tmp_path) == ["result.json"]


@pytest.mark.backend_independent
def test_write_result_failing_in_json_dump_keeps_the_previous(
    tmp_path, monkeypatch
):
    path = str(tmp_path / "result.json")
    training.write_result(path, {"accuracy": 0.5})
    before = open(path).read()

    def broken_dump(payload, f, **kwargs):
        f.write('{"accuracy": 0.')
        raise OSError("No space left on device")

    monkeypatch.setattr(results.json, "dump", broken_dump)
    with pytest.raises(OSError, match="No space"):
        training.write_result(path, {"accuracy": 0.9})
    assert open(path).read() == before
    assert os.listdir(tmp_path) == ["result.json"]


def test_checkpoints_interrupted_mid_save_keep_the_previous_model(
    tmp_path, monkeypatch
):
    x, y = _data()
    paths = training.RunPaths(tmp_path / "run")
    training.fit(_tiny_model(), (x, y), epochs=1, paths=paths, verbose=0)
    before = {
        p: open(p, "rb").read() for p in (paths.last_model, paths.best_model)
    }
    weights = os.path.join(paths.backup_dir, "latest.weights.h5")

    def interrupted(write):
        def half_write(self, filepath, *args, **kwargs):
            write(self, filepath, *args, **kwargs)
            with open(filepath, "r+b") as f:
                f.truncate(100)  # killed half way through the write
            raise OSError("killed")

        return half_write

    # First the checkpoints' save fails, then the backup's.
    for method, epochs in (("save", 2), ("save_weights", 3)):
        # (The backup, saved before the checkpoints, holds epoch 2 after
        # the first round.)
        backup_before = open(weights, "rb").read()
        with monkeypatch.context() as patch:
            write = getattr(keras.Model, method)
            patch.setattr(keras.Model, method, interrupted(write))
            with pytest.raises(OSError, match="killed"):
                training.fit(
                    _tiny_model(), (x, y), epochs=epochs, paths=paths,
                    resume=True, verbose=0,
                )  # fmt: skip
    for path, content in before.items():
        assert open(path, "rb").read() == content
        keras.saving.load_model(path)  # still a whole model
    assert open(weights, "rb").read() == backup_before
    assert not _leftovers(paths.output_dir)
    assert not _leftovers(paths.backup_dir)


def test_a_damaged_backup_is_one_clear_error(tmp_path):
    x, y = _data()
    paths = training.RunPaths(tmp_path / "run")
    training.fit(_tiny_model(), (x, y), epochs=1, paths=paths, verbose=0)
    weights = os.path.join(paths.backup_dir, "latest.weights.h5")
    with open(weights, "r+b") as f:
        f.truncate(64)
    with pytest.raises(training.CorruptedFileError) as info:
        training.fit(
            _tiny_model(), (x, y), epochs=2, paths=paths, resume=True,
            verbose=0,
        )  # fmt: skip
    message = str(info.value)
    assert paths.backup_dir in message and "without --resume" in message
    assert "\n" not in message


def test_resume_replaces_best_model_only_with_a_better_epoch(tmp_path):
    x, y = _data()
    paths = training.RunPaths(tmp_path / "run")
    history, _ = training.fit(
        _tiny_model(), (x, y), validation_data=(x, y), epochs=2,
        paths=paths, verbose=0,
    )  # fmt: skip
    best = open(paths.best_model, "rb").read()
    # The resumed epoch is judged on far-off targets: a worse val_loss.
    history, _ = training.fit(
        _tiny_model(), (x, y), validation_data=(x, y + 100.0), epochs=3,
        paths=paths, resume=True, verbose=0,
    )  # fmt: skip
    assert history["val_loss"][2] > min(history["val_loss"][:2])
    assert open(paths.best_model, "rb").read() == best
    # A better epoch does replace it.
    training.fit(
        _tiny_model(), (x, y), validation_data=(x, y), epochs=40,
        paths=paths, resume=True, verbose=0,
    )  # fmt: skip
    assert open(paths.best_model, "rb").read() != best


@pytest.mark.backend_independent
def test_best_value_reads_the_direction_of_the_metric():
    history = {"val_loss": [3.0, 1.0, 2.0], "val_accuracy": [0.1, 0.5, 0.3]}
    assert checkpoints.best_value(history, "val_loss", "auto") == 1.0
    assert checkpoints.best_value(history, "val_accuracy", "auto") == 0.5
    assert checkpoints.best_value(history, "val_loss", "max") == 3.0
    assert checkpoints.best_value(history, "loss", "auto") is None


@pytest.mark.backend_independent
def test_output_dir_checks_name_the_argument(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(training.UsageError, match="--output-dir.*is a file"):
        training.check_output_dir(a_file)
    with pytest.raises(training.UsageError, match="lies under the file"):
        training.check_output_dir(a_file / "run")
    with pytest.raises(training.UsageError, match="cannot write"):
        training.check_output_dir("/proc/keras_ssm_no_such_dir/run")
    assert training.check_output_dir(tmp_path / "new" / "run") == str(
        tmp_path / "new" / "run"
    )
    assert os.listdir(tmp_path / "new" / "run") == []


@pytest.mark.backend_independent
def test_labels_are_checked_against_the_number_of_classes():
    training.check_labels(np.array([0, 9]), 10)
    with pytest.raises(training.UsageError, match=r"\[0, 10\).*15"):
        training.check_labels(np.array([0, 15]), 10, "listops train")
    with pytest.raises(training.UsageError, match="-1"):
        training.check_labels(np.array([-1, 2]), 10)
    with pytest.raises(training.UsageError, match="integers"):
        training.check_labels(np.array([0.5]), 10)


@pytest.mark.backend_independent
def test_run_cli_prints_one_line_and_debug_shows_the_traceback(capsys):
    def main(argv):
        raise training.UsageError("argument --data: no data set 'foo'.")

    with pytest.raises(SystemExit) as info:
        training.run_cli(main, ["--data", "foo"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--data" in err
    assert "Traceback" not in err
    with pytest.raises(training.UsageError):
        training.run_cli(main, ["--data", "foo", "--debug"])
