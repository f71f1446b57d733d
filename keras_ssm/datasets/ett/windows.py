"""Sliding forecast windows as a `keras.utils.PyDataset` (every backend)."""

import keras
import numpy as np

from keras_ssm.utils.validation import check_int


class ForecastWindows(keras.utils.PyDataset):
    """Batches of (past `input_size` rows, next `h` rows) from one split.

    Window i takes inputs `values[i : i + input_size]` and targets
    `targets[i + input_size : i + input_size + h]`, for every i with a full
    target, i.e. `len(values) - input_size - h + 1` windows (the Informer
    count). `input_size` and `h` follow the neuralforecast names.

    Args:
        values: (rows, input_features) array of standardised inputs.
        targets: (rows, target_features) array of standardised targets
            (the same rows; a column subset for "S"/"MS").
        input_size: length of the input window.
        h: forecast horizon.
        batch_size: windows per batch; the last batch may be smaller.
        drop_remainder: leave out the last, smaller batch of each epoch
            (with shuffling, other windows are left out each epoch); keeps
            one batch shape, so compiled backends trace the step once.
        shuffle: reshuffle the window order at the start of every epoch.
        seed: seed of the shuffling.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset`.

    Example:

    ```python
    train = ForecastWindows(z, z[:, -1:], input_size=96, h=24)
    x, y = train[0]  # (32, 96, 7), (32, 24, 1)
    ```
    """

    def __init__(
        self,
        values,
        targets,
        input_size,
        h,
        batch_size=32,
        drop_remainder=False,
        shuffle=False,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        values = np.asarray(values, dtype=np.float32)
        targets = np.asarray(targets, dtype=np.float32)
        if values.ndim != 2 or targets.ndim != 2:
            raise ValueError(
                "`values` and `targets` must be 2-D (rows, features); got "
                f"shapes {values.shape} and {targets.shape}."
            )
        if len(values) != len(targets):
            raise ValueError(
                f"`values` ({len(values)} rows) and `targets` "
                f"({len(targets)} rows) must have the same number of rows."
            )
        input_size = check_int("input_size", input_size, minimum=1)
        h = check_int("h", h, minimum=1)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        self.num_windows = len(values) - input_size - h + 1
        if self.num_windows < 1:
            raise ValueError(
                f"A split of {len(values)} rows holds no window of "
                f"input_size={input_size} + h={h} rows."
            )
        self.values = values
        self.targets = targets
        self.input_size = int(input_size)
        self.h = int(h)
        self.batch_size = int(batch_size)
        self.drop_remainder = bool(drop_remainder)
        self.shuffle = bool(shuffle)
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(self.num_windows)
        if self.shuffle:
            self._rng.shuffle(self._order)
        self._input_offsets = np.arange(self.input_size)
        self._target_offsets = self.input_size + np.arange(self.h)

    def __len__(self):
        if self.drop_remainder and self.num_windows >= self.batch_size:
            return self.num_windows // self.batch_size
        return -(-self.num_windows // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range [0, {len(self)}).")
        starts = self._order[
            index * self.batch_size : (index + 1) * self.batch_size
        ]
        inputs = self.values[starts[:, None] + self._input_offsets]
        targets = self.targets[starts[:, None] + self._target_offsets]
        return inputs, targets

    def on_epoch_end(self):
        if self.shuffle:
            self._rng.shuffle(self._order)

    def arrays(self):
        """All windows in order, as (inputs, targets) NumPy arrays."""
        starts = np.arange(self.num_windows)
        return (
            self.values[starts[:, None] + self._input_offsets],
            self.targets[starts[:, None] + self._target_offsets],
        )
