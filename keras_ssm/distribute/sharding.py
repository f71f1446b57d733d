"""Each process' part of every global batch, for arrays and PyDatasets."""

import math

import keras
import numpy as np


def part_bounds(global_size, index, count):
    """`[start, stop)` of process `index`'s equal part of a global batch.

    Parts are equal (the last `global_size % count` samples of the batch
    are dropped) because JAX assembles the global batch from equal
    per-process parts.
    """
    if global_size < count:
        raise ValueError(
            f"A global batch of {global_size} samples cannot be split over "
            f"{count} processes; use a batch size (and, for the last batch, "
            "a dataset size) of at least the number of processes."
        )
    size = global_size // count
    return index * size, (index + 1) * size


def _take(data, start, stop):
    def take(leaf):
        if leaf is None:
            return None
        return leaf[start:stop]

    return keras.tree.map_structure(take, data, none_is_leaf=False)


class ShardedBatches(keras.utils.PyDataset):
    """This process' part of each global batch of arrays or a PyDataset.

    Every process walks the same sequence of global batches (same order,
    same shuffling seed) and keeps its own contiguous part, so the
    processes together see exactly the global batches one process would.

    Args:
        data: a `keras.utils.PyDataset` whose items are global batches, or a
            structure of arrays (e.g. `(x, y)`) with samples on axis 0.
        process_index: this process' index.
        process_count: the number of processes.
        batch_size: the global batch size (arrays only).
        shuffle: shuffle the samples each epoch (arrays only), with the same
            permutation in every process.
        seed: seed of the shuffling, the same in every process.

    Example:

    >>> x = np.arange(8)[:, None]
    >>> part = ShardedBatches((x, x), 1, 2, batch_size=4)
    >>> part[0][0][:, 0].tolist()
    [2, 3]
    """

    def __init__(
        self,
        data,
        process_index,
        process_count,
        batch_size=None,
        shuffle=False,
        seed=0,
    ):
        super().__init__()
        if not 0 <= process_index < process_count:
            raise ValueError(
                f"`process_index` must be in [0, {process_count}); got "
                f"{process_index!r}."
            )
        self.data = data
        self.process_index = process_index
        self.process_count = process_count
        self.is_dataset = isinstance(data, keras.utils.PyDataset)
        if not self.is_dataset:
            if not isinstance(batch_size, int) or batch_size < 1:
                raise ValueError(
                    "`batch_size` (the global batch) must be a positive "
                    f"integer for array data; got {batch_size!r}."
                )
            leaves = [leaf for leaf in keras.tree.flatten(data)]
            self.num_samples = len(leaves[0])
            self.order = np.arange(self.num_samples)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self._reorder()

    def _reorder(self):
        if not self.is_dataset and self.shuffle:
            rng = np.random.RandomState(self.seed + self.epoch)
            self.order = rng.permutation(self.num_samples)

    def __len__(self):
        if self.is_dataset:
            return len(self.data)
        return math.ceil(self.num_samples / self.batch_size)

    def __getitem__(self, index):
        if self.is_dataset:
            batch = self.data[index]
        else:
            rows = self.order[
                index * self.batch_size : (index + 1) * self.batch_size
            ]
            batch = keras.tree.map_structure(
                lambda a: np.asarray(a)[rows], self.data, none_is_leaf=False
            )
            if isinstance(batch, list):
                batch = tuple(batch)
        size = len(keras.tree.flatten(batch)[0])
        start, stop = part_bounds(size, self.process_index, self.process_count)
        return _take(batch, start, stop)

    def on_epoch_end(self):
        self.epoch += 1
        self._reorder()
        if self.is_dataset:
            self.data.on_epoch_end()
