"""Forecasting data: Informer borders, windows, scaling without leakage,
feature modes and the file lookup (never the network)."""

import os

import numpy as np
import pandas as pd
import pytest

from keras_ssm.datasets.ett import CHECKSUMS
from keras_ssm.datasets.ett import ForecastWindows
from keras_ssm.datasets.ett import Standardizer
from keras_ssm.datasets.ett import load_forecasting_data
from keras_ssm.datasets.ett import resolve_csv
from keras_ssm.datasets.ett import sha256_of
from keras_ssm.datasets.ett import sources
from keras_ssm.datasets.ett import split_borders
from tests.conftest import shared_data_dir

# The same under every backend (CSV files and NumPy windows).
pytestmark = pytest.mark.backend_independent

ETTH1 = os.path.join(shared_data_dir(), "ETT-small", "ETTh1.csv")
needs_etth1 = pytest.mark.skipif(
    not os.path.isfile(ETTH1), reason=f"{ETTH1} not available"
)


def write_csv(path, rows, seed=0, columns=("HUFL", "MUFL", "OT")):
    """A long-format CSV with a date column and random-walk series."""
    rng = np.random.default_rng(seed)
    values = np.cumsum(rng.normal(size=(rows, len(columns))), axis=0)
    frame = pd.DataFrame(values, columns=list(columns))
    dates = pd.date_range("2016-07-01", periods=rows, freq="h")
    frame.insert(0, "date", dates.strftime("%Y-%m-%d %H:%M:%S"))
    frame.to_csv(path, index=False)
    return values


def test_ett_hour_borders_are_informer_months():
    borders = split_borders("ett_hour", 17420, input_size=96)
    assert borders == {
        "train": (0, 8640),
        "val": (8640 - 96, 8640 + 2880),
        "test": (8640 + 2880 - 96, 8640 + 2 * 2880),
    }


def test_ett_minute_borders_are_the_same_months_at_15_minutes():
    borders = split_borders("ett_minute", 69680, input_size=96)
    assert borders["train"] == (0, 4 * 8640)
    assert borders["val"] == (4 * 8640 - 96, 4 * 11520)
    assert borders["test"] == (4 * 11520 - 96, 4 * 14400)


def test_custom_borders_are_70_10_20():
    borders = split_borders("custom", 1000, input_size=10)
    assert borders == {
        "train": (0, 700),
        "val": (690, 800),
        "test": (790, 1000),
    }


def test_borders_reject_bad_arguments():
    with pytest.raises(ValueError, match="at least 14400 rows"):
        split_borders("ett_hour", 14000, 96)
    with pytest.raises(ValueError, match="kind"):
        split_borders("yearly", 20000, 96)
    with pytest.raises(ValueError, match="input_size"):
        split_borders("ett_hour", 17420, 0)


@needs_etth1
def test_etth1_split_sizes_and_window_counts():
    data = load_forecasting_data(
        "ETTh1", "S", input_size=96, h=24, batch_size=32, path=ETTH1
    )
    # Informer: len(split rows) - seq_len - pred_len + 1 windows.
    assert data.train.num_windows == 8640 - 96 - 24 + 1
    assert data.val.num_windows == 2880 - 24 + 1
    assert data.test.num_windows == 2880 - 24 + 1
    assert len(data.train) == (8640 - 96 - 24 + 1) // 32  # full batches
    assert len(data.test) == -(-(2880 - 24 + 1) // 256)  # eval batches
    raw = pd.read_csv(ETTH1)["OT"].to_numpy()
    np.testing.assert_allclose(data.scaler.mean, [raw[:8640].mean()])
    np.testing.assert_allclose(data.scaler.std, [raw[:8640].std()])
    # The first test target is CSV row 11520; its input reaches into val.
    x, y = data.test.arrays()
    expected = (raw[11520 - 96 : 11520 + 24] - raw[:8640].mean()) / raw[
        :8640
    ].std()
    np.testing.assert_allclose(x[0, :, 0], expected[:96], rtol=1e-5)
    np.testing.assert_allclose(y[0, :, 0], expected[96:], rtol=1e-5)
    assert CHECKSUMS["ETTh1"] == sha256_of(ETTH1)


def test_windows_slice_inputs_then_targets():
    values = np.arange(40, dtype=np.float32).reshape(20, 2)
    windows = ForecastWindows(
        values, values[:, 1:], input_size=5, h=3, batch_size=4
    )
    assert windows.num_windows == 20 - 5 - 3 + 1
    assert len(windows) == 4  # 13 windows: 4 + 4 + 4 + 1
    x, y = windows[1]
    assert x.shape == (4, 5, 2) and y.shape == (4, 3, 1)
    np.testing.assert_array_equal(x[2], values[6:11])
    np.testing.assert_array_equal(y[2, :, 0], values[11:14, 1])
    x_last, _ = windows[3]
    assert x_last.shape == (1, 5, 2)
    with pytest.raises(IndexError):
        windows[4]


def test_shuffled_windows_cover_each_window_once_per_epoch():
    values = np.arange(30, dtype=np.float32)[:, None]
    windows = ForecastWindows(
        values, values, input_size=4, h=2, batch_size=5, shuffle=True, seed=1
    )
    for _ in range(2):
        starts = np.concatenate(
            [windows[i][0][:, 0, 0] for i in range(len(windows))]
        )
        np.testing.assert_array_equal(np.sort(starts), np.arange(25))
        windows.on_epoch_end()


def test_drop_remainder_keeps_full_batches_only():
    values = np.zeros((20, 1), np.float32)
    windows = ForecastWindows(
        values, values, 5, 3, batch_size=4, drop_remainder=True
    )
    assert len(windows) == 3
    assert all(windows[i][0].shape[0] == 4 for i in range(3))


def test_windows_reject_bad_shapes():
    with pytest.raises(ValueError, match="no window"):
        ForecastWindows(np.zeros((10, 1)), np.zeros((10, 1)), 8, 4)
    with pytest.raises(ValueError, match="2-D"):
        ForecastWindows(np.zeros(10), np.zeros((10, 1)), 2, 2)
    with pytest.raises(ValueError, match="same number of rows"):
        ForecastWindows(np.zeros((10, 1)), np.zeros((9, 1)), 2, 2)


def test_scaling_uses_training_rows_only(tmp_path):
    path = str(tmp_path / "ETTh1.csv")
    values = write_csv(path, 14400)
    data = load_forecasting_data("ETTh1", "M", input_size=24, h=12, path=path)
    np.testing.assert_allclose(data.scaler.mean, values[:8640].mean(0))
    np.testing.assert_allclose(data.scaler.std, values[:8640].std(0))
    # Change every validation and test row: scaling and training windows
    # must not move.
    frame = pd.read_csv(path)
    frame.iloc[8640:, 1:] = frame.iloc[8640:, 1:] * 100.0 + 1e3
    leaked = str(tmp_path / "changed.csv")
    frame.to_csv(leaked, index=False)
    changed = load_forecasting_data(
        "ETTh1", "M", input_size=24, h=12, path=leaked
    )
    np.testing.assert_allclose(changed.scaler.mean, data.scaler.mean)
    np.testing.assert_allclose(changed.scaler.std, data.scaler.std)
    np.testing.assert_allclose(
        changed.train.arrays()[0], data.train.arrays()[0]
    )
    assert not np.allclose(changed.test.arrays()[1], data.test.arrays()[1])


@pytest.mark.parametrize(
    "features, inputs, targets",
    [("S", 1, [0]), ("M", 3, [0, 1, 2]), ("MS", 3, [2])],
)
def test_feature_modes(tmp_path, features, inputs, targets):
    path = str(tmp_path / "ETTh2.csv")
    values = write_csv(path, 14400)
    data = load_forecasting_data(
        "ETTh2", features, input_size=16, h=8, batch_size=4, path=path
    )
    assert data.input_features == inputs and data.target_columns == targets
    with pytest.warns(DeprecationWarning, match="`num_inputs`.*`input_feat"):
        assert data.num_inputs == inputs  # the deprecated name
    x, y = data.train[0]
    assert x.shape == (4, 16, inputs) and y.shape == (4, 8, len(targets))
    x, y = data.val.arrays()
    assert x.shape[1:] == (16, inputs) and y.shape[1:] == (8, len(targets))
    # Targets are the standardised target columns of the rows after x.
    ot = (values[:, 2] - values[:8640, 2].mean()) / values[:8640, 2].std()
    column = len(targets) - 1
    np.testing.assert_allclose(y[0, :, column], ot[8640:8648], rtol=1e-5)


def test_bad_feature_mode_and_target(tmp_path):
    path = str(tmp_path / "ETTh1.csv")
    write_csv(path, 14400)
    with pytest.raises(ValueError, match="features"):
        load_forecasting_data("ETTh1", "X", path=path)
    with pytest.raises(ValueError, match="target"):
        load_forecasting_data("ETTh1", "S", target="nope", path=path)


def test_standardizer_round_trip():
    values = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 3))
    scaler = Standardizer.fit(values[:30])
    z = scaler.transform(values)
    np.testing.assert_allclose(z[:30].mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[:30].std(0), 1.0)
    np.testing.assert_allclose(scaler.inverse_transform(z), values)
    np.testing.assert_allclose(
        scaler.inverse_transform(z[:, [2]], columns=[2]), values[:, [2]]
    )


def test_resolve_prefers_data_dir_and_both_layouts(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_SSM_DATA", str(tmp_path / "empty"))
    flat = tmp_path / "flat"
    nested = tmp_path / "nested" / "ETT-small"
    flat.mkdir()
    nested.mkdir(parents=True)
    (flat / "ETTm1.csv").write_text("date,OT\n")
    (nested / "ETTm2.csv").write_text("date,OT\n")
    assert resolve_csv("ETTm1", data_dir=str(flat)) == str(flat / "ETTm1.csv")
    found = resolve_csv("ETTm2", data_dir=str(tmp_path / "nested"))
    assert found == str(nested / "ETTm2.csv")
    monkeypatch.setenv("KERAS_SSM_DATA", str(tmp_path / "nested"))
    assert resolve_csv("ETTm2") == str(nested / "ETTm2.csv")


def test_offline_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_SSM_DATA", str(tmp_path / "empty"))
    # Port 9 (discard) on the loopback refuses connections: offline.
    monkeypatch.setattr(sources, "ETDATASET_URL", "http://127.0.0.1:9/")
    with pytest.raises(FileNotFoundError, match="--data-dir") as error:
        resolve_csv("ETTh1", cache_dir=str(tmp_path / "cache"))
    assert "http://127.0.0.1:9/ETTh1.csv" in str(error.value)
    assert not os.listdir(tmp_path / "cache")  # no partial file left
    with pytest.raises(FileNotFoundError, match="disabled"):
        resolve_csv("ETTh1", cache_dir=str(tmp_path), download=False)
    with pytest.raises(FileNotFoundError, match="weather"):
        resolve_csv("weather", cache_dir=str(tmp_path))


def test_download_is_verified_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_SSM_DATA", str(tmp_path / "empty"))
    server = tmp_path / "server"
    server.mkdir()
    payload = b"date,OT\n2016-07-01 00:00:00,1.0\n"
    for name in ("ETTh1", "ETTm1"):
        (server / f"{name}.csv").write_bytes(payload)
    monkeypatch.setattr(sources, "ETDATASET_URL", server.as_uri() + "/")
    cache = tmp_path / "cache"
    # ETTh1 has a known checksum: a wrong payload is refused, not cached.
    with pytest.raises(ValueError, match="SHA-256"):
        resolve_csv("ETTh1", cache_dir=str(cache))
    assert not os.listdir(cache)
    # ETTm1 has none: the download lands in the cache and is reused even
    # once the source is gone.
    path = resolve_csv("ETTm1", cache_dir=str(cache))
    assert path == str(cache / "ETTm1.csv")
    assert open(path, "rb").read() == payload
    (server / "ETTm1.csv").unlink()
    assert resolve_csv("ETTm1", cache_dir=str(cache)) == path


def test_default_cache_follows_keras_ssm_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_SSM_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("KERAS_SSM_CACHE", str(tmp_path / "cache"))
    server = tmp_path / "server"
    server.mkdir()
    (server / "ETTm2.csv").write_bytes(b"date,OT\n2016-07-01 00:00:00,2.0\n")
    monkeypatch.setattr(sources, "ETDATASET_URL", server.as_uri() + "/")
    path = resolve_csv("ETTm2")
    assert path == str(tmp_path / "cache" / "forecasting" / "ETTm2.csv")


def test_argument_errors_name_the_argument_the_caller_used(tmp_path):
    from keras_ssm.datasets import ett

    write_csv(str(tmp_path / "tiny.csv"), 60)  # 70/10/20: 42 / 6 / 12 rows
    kwargs = {"data_dir": str(tmp_path), "download": False}
    # `load_data` calls the horizon `horizon`; the windows call it `h`.
    with pytest.raises(ValueError, match="`horizon`") as error:
        ett.load_data("tiny", input_size=4, horizon=200, **kwargs)
    assert "h=" not in str(error.value).replace("horizon=", "")
    with pytest.raises(TypeError, match="`horizon` must be an integer"):
        ett.load_data("tiny", input_size=4, horizon=2.5, **kwargs)
    with pytest.raises(TypeError, match="`input_size` must be an integer"):
        ett.load_data("tiny", input_size="4", horizon=2, **kwargs)
    with pytest.raises(ValueError, match="tiny.csv.*`h`"):
        load_forecasting_data("tiny", input_size=4, h=200, **kwargs)
    with pytest.raises(TypeError, match="`batch_size` must be an integer"):
        load_forecasting_data(
            "tiny", input_size=4, h=2, batch_size=1.5, **kwargs
        )
    with pytest.raises(TypeError, match="`h` must be an integer"):
        ForecastWindows(np.zeros((10, 1)), np.zeros((10, 1)), 2, None)
    with pytest.raises(TypeError, match="`input_size` must be an integer"):
        split_borders("custom", 100, 2.0)
    (x, y), _, _, _ = ett.load_data("tiny", input_size=4, horizon=2, **kwargs)
    assert x.shape == (37, 4, 1) and y.shape == (37, 2, 1)


def test_empty_data_gives_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="non-empty"):
        Standardizer.fit(np.zeros((0, 3)))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.csv is empty"):
        load_forecasting_data("empty", path=str(empty))
    with pytest.raises(ValueError, match="no window"):
        ForecastWindows(np.zeros((0, 1)), np.zeros((0, 1)), 2, 2)
