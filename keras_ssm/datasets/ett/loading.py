"""Reads a forecasting CSV and builds the three standardised window sets."""

import dataclasses
import warnings

import numpy as np

from keras_ssm.datasets.ett.sources import dataset_kind
from keras_ssm.datasets.ett.sources import resolve_csv
from keras_ssm.datasets.ett.splits import SPLITS
from keras_ssm.datasets.ett.splits import Standardizer
from keras_ssm.datasets.ett.splits import split_borders
from keras_ssm.datasets.ett.windows import ForecastWindows
from keras_ssm.utils.validation import check_int

FEATURE_MODES = ("S", "M", "MS")


def read_series_csv(path):
    """(column names, float64 values) of a long-format CSV without its date.

    The first column is the timestamp ("date"), every other column a series.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: no columns to read.") from None
    if frame.shape[1] < 2:
        raise ValueError(
            f"{path} must have a date column and at least one series; got "
            f"columns {list(frame.columns)}."
        )
    frame = frame.drop(columns=frame.columns[0])
    return list(frame.columns), frame.to_numpy(dtype=np.float64)


def select_features(columns, values, features, target):
    """Input and target columns for a features mode.

    - "S": univariate, input and target are the `target` column.
    - "M": multivariate, all columns in, all columns out.
    - "MS": all columns in, only `target` out.

    Returns:
        (input values, target column indices into the inputs).
    """
    if features not in FEATURE_MODES:
        raise ValueError(
            f"`features` must be one of {FEATURE_MODES}, got {features!r}."
        )
    if target not in columns:
        raise ValueError(
            f"`target` {target!r} is not a column; columns are {columns}."
        )
    target_index = columns.index(target)
    if features == "S":
        return values[:, [target_index]], [0]
    if features == "M":
        return values, list(range(values.shape[1]))
    return values, [target_index]


@dataclasses.dataclass
class ForecastingData:
    """The three window sets of one data set and how they were made.

    Attributes:
        train, val, test: `ForecastWindows` of the standardised splits.
        scaler: `Standardizer` fitted on the training rows of the inputs.
        borders: {"train": (start, end), ...} row ranges in the CSV.
        columns: names of the input columns.
        target_columns: indices (into the inputs) of the predicted columns.
        path: the CSV that was read.
    """

    train: ForecastWindows
    val: ForecastWindows
    test: ForecastWindows
    scaler: Standardizer
    borders: dict
    columns: list
    target_columns: list
    path: str

    @property
    def input_features(self):
        """The number of input series (the models' `input_features`)."""
        return len(self.columns)

    @property
    def num_inputs(self):
        """Deprecated name of `input_features`."""
        warnings.warn(
            "`num_inputs` of ForecastingData is deprecated: use "
            "`input_features`.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.input_features

    @property
    def num_targets(self):
        return len(self.target_columns)


def load_forecasting_data(
    name="ETTh1",
    features="S",
    target="OT",
    input_size=96,
    h=24,
    batch_size=32,
    data_dir=None,
    cache_dir=None,
    download=True,
    path=None,
    seed=0,
):
    """Loads a data set as Informer-protocol train/val/test windows.

    The scaler is fitted on the training rows only and applied to all rows;
    validation and test windows reach `input_size` rows back into the
    previous split. Training windows are shuffled every epoch and come in
    full batches only (as Informer's `drop_last`); validation and test keep
    every window.

    Args:
        name: "ETTh1", "ETTh2", "ETTm1", "ETTm2", "weather", ...
        features: "S" (univariate), "M" (multivariate) or "MS".
        target: the predicted column for "S" and "MS" (ETT: "OT", the oil
            temperature).
        input_size: length of the input window.
        h: forecast horizon.
        batch_size: windows per training batch (validation and test use
            at least 256).
        data_dir, cache_dir, download: see `sources.resolve_csv`.
        path: read this CSV instead of resolving `name` (the split still
            follows `name`'s kind).
        seed: seed of the training shuffle.

    Returns:
        A `ForecastingData`.

    Example:

    ```python
    data = load_forecasting_data("ETTh1", "S", input_size=96, h=24)
    model.fit(data.train, validation_data=data.val)
    ```
    """
    return _load(
        name,
        features,
        target,
        input_size=input_size,
        h=h,
        horizon_name="h",
        batch_size=batch_size,
        seed=seed,
        path=path,
        data_dir=data_dir,
        cache_dir=cache_dir,
        download=download,
    )


def _load(
    name,
    features,
    target,
    *,
    input_size,
    h,
    horizon_name,
    batch_size=32,
    seed=0,
    path=None,
    **source,
):
    """`load_forecasting_data`; errors call the horizon `horizon_name`.

    `source` holds the `data_dir`, `cache_dir` and `download` arguments of
    `resolve_csv`, which finds the CSV unless `path` is given.
    """
    input_size = check_int("input_size", input_size, minimum=1)
    h = check_int(horizon_name, h, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    path = path or resolve_csv(name, **source)
    columns, values = read_series_csv(path)
    values, target_columns = select_features(columns, values, features, target)
    if features == "S":
        columns = [target]
    borders = split_borders(dataset_kind(name), len(values), input_size)
    for split, (start, end) in borders.items():
        if end - start < input_size + h:
            raise ValueError(
                f"The {split} split of {path} has {end - start} rows, too "
                f"few for one window of input_size={input_size} + "
                f"{horizon_name}={h} rows; lower `{horizon_name}` or "
                "`input_size`."
            )
    train_start, train_end = borders["train"]
    scaler = Standardizer.fit(values[train_start:train_end])
    scaled = scaler.transform(values)
    eval_batch = max(batch_size, 256)
    windows = {}
    for split in SPLITS:
        start, end = borders[split]
        rows = scaled[start:end]
        windows[split] = ForecastWindows(
            rows,
            rows[:, target_columns],
            input_size=input_size,
            h=h,
            # Evaluation batches are larger: fewer calls, same results.
            batch_size=batch_size if split == "train" else eval_batch,
            drop_remainder=split == "train",
            shuffle=split == "train",
            seed=seed,
        )
    return ForecastingData(
        train=windows["train"],
        val=windows["val"],
        test=windows["test"],
        scaler=scaler,
        borders=borders,
        columns=columns,
        target_columns=target_columns,
        path=path,
    )


def load_data(
    name="ETTh1",
    features="S",
    input_size=96,
    horizon=24,
    target="OT",
    data_dir=None,
    download=True,
):
    """ETT windows with the Informer splits and training-only scaling.

    Rows are split 12 / 4 / 4 months (Zhou et al., Informer, AAAI 2021;
    other CSVs 70/10/20), standardised with the statistics of the training
    rows, and cut into every window of `input_size` inputs followed by
    `horizon` targets (validation and test windows reach back into the
    previous split). The CSV is looked up in `data_dir`, then
    `$KERAS_SSM_DATA` (`<dir>/<name>.csv` or `<dir>/ETT-small/<name>.csv`),
    then the cache, then downloaded and checked against its SHA-256.

    Args:
        name: "ETTh1", "ETTh2", "ETTm1", "ETTm2", or the stem of a CSV of
            the same format found locally.
        features: "S" (the target alone), "M" (all series in and out) or
            "MS" (all in, the target out).
        input_size: input window length.
        horizon: forecast horizon.
        target: the predicted column for "S" and "MS".
        data_dir: a directory to look in first.
        download: allow downloading the ETT files.

    Returns:
        `(x_train, y_train), (x_val, y_val), (x_test, y_test), scaler`:
        float32 windows (n, input_size, inputs) and targets (n, horizon,
        targets) on the standardised scale, in time order, and the
        `Standardizer` (`scaler.inverse_transform(y, columns)` maps back).

    Example:

    ```python
    (x_train, y_train), val, test, scaler = load_data(
        "ETTh1", features="S", input_size=96, horizon=24
    )
    ```
    """
    data = _load(
        name,
        features,
        target,
        input_size=input_size,
        h=horizon,
        horizon_name="horizon",
        data_dir=data_dir,
        download=download,
    )
    return (
        data.train.arrays(),
        data.val.arrays(),
        data.test.arrays(),
        data.scaler,
    )
