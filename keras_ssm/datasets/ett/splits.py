"""Train/validation/test borders of the Informer protocol and scaling.

ETT hourly (Zhou et al., 2021): 12 months train, 4 validation, 4 test, a
month being 30 days, so 8640 / 2880 / 2880 rows. ETT 15-minute: the same
months, 4 rows an hour (34560 / 11520 / 11520). The validation and test
splits start `input_size` rows before their first target so that their
first window reaches back into the previous split, as in the Informer code.
Other CSVs (weather, electricity) use the 70/10/20 split of Autoformer.
"""

import numpy as np

from keras_ssm.utils.validation import check_int

HOURS_PER_MONTH = 30 * 24
SPLITS = ("train", "val", "test")


def split_borders(kind, num_rows, input_size):
    """Row ranges `[start, end)` of the three splits.

    Args:
        kind: "ett_hour", "ett_minute" or "custom" (see
            `sources.dataset_kind`).
        num_rows: rows in the CSV.
        input_size: length of the input window; val and test start this many
            rows before their first target row.

    Returns:
        A dict {"train": (start, end), "val": ..., "test": ...}.

    Example:

    >>> split_borders("ett_hour", 17420, 96)["val"]
    (8544, 11520)
    """
    input_size = check_int("input_size", input_size, minimum=1)
    num_rows = check_int("num_rows", num_rows, minimum=0)
    if kind in ("ett_hour", "ett_minute"):
        rows_per_month = HOURS_PER_MONTH * (4 if kind == "ett_minute" else 1)
        train_end = 12 * rows_per_month
        val_end = train_end + 4 * rows_per_month
        test_end = val_end + 4 * rows_per_month
    elif kind == "custom":
        train_end = int(num_rows * 0.7)
        test_rows = int(num_rows * 0.2)
        val_end = num_rows - test_rows
        test_end = num_rows
    else:
        raise ValueError(
            "`kind` must be one of ('ett_hour', 'ett_minute', 'custom'), "
            f"got {kind!r}."
        )
    if test_end > num_rows:
        raise ValueError(
            f"A {kind} data set needs at least {test_end} rows for the "
            f"Informer split; got {num_rows}."
        )
    if input_size > train_end:
        raise ValueError(
            f"`input_size`={input_size} is longer than the training split "
            f"({train_end} rows)."
        )
    return {
        "train": (0, train_end),
        "val": (train_end - input_size, val_end),
        "test": (val_end - input_size, test_end),
    }


class Standardizer:
    """Per-column standardisation with statistics of the training rows only.

    z = (x - mean) / std, with the population std (ddof=0) as in
    scikit-learn's `StandardScaler`, which the Informer code uses.

    Args:
        mean: per-column means, shape (columns,).
        std: per-column standard deviations, shape (columns,).

    Example:

    >>> import numpy as np
    >>> values = np.arange(8.0).reshape(4, 2)
    >>> scaler = Standardizer.fit(values[:2])
    >>> scaler.transform(values)[:, 0].tolist()
    [-1.0, 1.0, 3.0, 5.0]
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)

    @classmethod
    def fit(cls, train_values):
        """Fits on (rows, columns) training values."""
        train_values = np.asarray(train_values, dtype=np.float64)
        if train_values.ndim != 2 or train_values.shape[0] == 0:
            raise ValueError(
                "`train_values` must be a non-empty (rows, columns) array; "
                f"got shape {train_values.shape}."
            )
        std = train_values.std(axis=0)
        # A constant column would divide by zero; leave it unscaled.
        return cls(train_values.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, values):
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.std

    def inverse_transform(self, values, columns=None):
        """Back to the original scale; `columns` selects a column subset."""
        mean, std = self.mean, self.std
        if columns is not None:
            mean, std = mean[columns], std[columns]
        return np.asarray(values, dtype=np.float64) * std + mean
