"""Multi-process data parallelism for the PyTorch backend.

Keras 3 has no distribution API for torch, so this module adds the least
glue on top of `torch.distributed` (no collective and no launcher of its
own; start the processes with `torchrun`):

* `initialize()` joins the process group described by torchrun's variables,
  with gloo on CPU and NCCL on CUDA, and a timeout so that a rank that died
  or hangs makes the others fail with a clear message instead of waiting
  forever.
* `prepare_model(model)` changes one model instance:
    - `fit` broadcasts rank 0's weights when training starts, adds a
      callback that averages each epoch's logs over the ranks (weighted by
      the samples each saw, so `loss` is the loss of the global batch), and
      silences the progress bar on ranks other than 0;
    - `train_step` keeps this rank's contiguous slice of each *global*
      batch (the batch size given to `fit` stays global);
    - before the optimizer applies the gradients, they are all-reduced:
      each rank's gradient of its slice's mean loss is weighted by its share
      of the global batch, so the sum is the gradient of the global batch's
      mean loss. The keras-ssm optimizer (parameter groups, schedules,
      clipping, loss scaling) then runs unchanged on every rank, which keeps
      the replicas identical.

Evaluation and prediction are not split: every rank evaluates the whole
data, which gives the same numbers on all ranks without communication.
"""

import datetime
import os
import types

import keras
import numpy as np

DEFAULT_TIMEOUT_SECONDS = 300


class CollectiveError(RuntimeError):
    """A collective across the torch ranks failed (a rank died or hung)."""


def _dist():
    import torch.distributed as dist

    return dist


def initialize(timeout_seconds=DEFAULT_TIMEOUT_SECONDS):
    """Joins the torch process group that `torchrun` describes.

    Reads `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR` and
    `MASTER_PORT`. Uses NCCL when CUDA is available (and selects the GPU
    `LOCAL_RANK`), gloo otherwise. Calling it again is a no-op.

    Args:
        timeout_seconds: how long a collective waits for the other ranks
            before failing (a positive number).

    Returns:
        `(rank, world_size)`.
    """
    import torch

    dist = _dist()
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if not timeout_seconds or timeout_seconds <= 0:
        raise ValueError(
            f"`timeout_seconds` must be a positive number; got "
            f"{timeout_seconds!r}."
        )
    missing = [
        name
        for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
        if name not in os.environ
    ]
    if missing:
        raise RuntimeError(
            f"The torch process group needs {missing} in the environment; "
            "start the script with `torchrun --nproc_per_node=N ...` (or "
            "`python -m torch.distributed.run ...`), which sets them."
        )
    use_nccl = torch.cuda.is_available()
    if use_nccl:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(
        backend="nccl" if use_nccl else "gloo",
        timeout=datetime.timedelta(seconds=timeout_seconds),
    )
    return dist.get_rank(), dist.get_world_size()


def _collective(what, function, *args, **kwargs):
    """Runs a collective; a failure names its probable cause."""
    dist = _dist()
    try:
        return function(*args, **kwargs)
    except Exception as error:  # gloo/NCCL raise several types
        raise CollectiveError(
            f"{what} across {dist.get_world_size()} torch ranks failed on "
            f"rank {dist.get_rank()}: another rank has probably died or "
            "stopped responding (the process group's timeout bounds the "
            f"wait). Original error: {type(error).__name__}: {error}"
        ) from error


def broadcast_variables(variables, source=0):
    """Copies `source` rank's values of `variables` to every rank."""
    dist = _dist()
    for variable in variables:
        _collective(
            "Broadcasting the initial weights",
            dist.broadcast,
            variable.value.data,
            src=source,
        )


def all_reduce_sum(tensors):
    """Sums a list of tensors (None entries skipped) over all ranks.

    The tensors are packed into one flat buffer so that one collective runs
    per step, not one per variable.
    """
    import torch

    dist = _dist()
    present = [t for t in tensors if t is not None]
    if not present:
        return list(tensors)
    flat = torch.cat([t.reshape(-1) for t in present])
    _collective("Averaging the gradients", dist.all_reduce, flat)
    out, offset = [], 0
    for t in tensors:
        if t is None:
            out.append(None)
            continue
        out.append(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()
    return out


def _shard_bounds(global_size, rank, world_size):
    """`[start, stop)` of this rank's contiguous slice of a global batch."""
    if global_size < world_size:
        raise ValueError(
            f"A global batch of {global_size} samples cannot be split over "
            f"{world_size} processes; use a batch size (and a dataset size "
            "for the last batch) of at least the number of processes."
        )
    start = rank * global_size // world_size
    stop = (rank + 1) * global_size // world_size
    return start, stop


def _batch_size(data):
    for leaf in keras.tree.flatten(data):
        if leaf is not None and hasattr(leaf, "shape") and len(leaf.shape):
            return int(leaf.shape[0])
    raise ValueError("Could not find the batch dimension of the data.")


def _slice_batch(data, start, stop):
    def take(leaf):
        if leaf is None or not hasattr(leaf, "shape") or not len(leaf.shape):
            return leaf
        return leaf[start:stop]

    return keras.tree.map_structure(take, data, none_is_leaf=False)


def _wrap_optimizer(model):
    """Makes `model.optimizer.apply` all-reduce the gradients first."""
    optimizer = model.optimizer
    if optimizer is None or getattr(optimizer, "_keras_ssm_all_reduce", False):
        return
    apply = optimizer.apply

    def apply_averaged(gradients, trainable_variables=None):
        share = model._keras_ssm_batch_share
        gradients = [None if g is None else g * share for g in gradients]
        gradients = all_reduce_sum(gradients)
        return apply(gradients, trainable_variables)

    optimizer.apply = apply_averaged
    optimizer._keras_ssm_all_reduce = True


class _AverageEpochLogs(keras.callbacks.Callback):
    """Broadcasts rank 0's weights at the start; averages epoch logs."""

    def on_train_begin(self, logs=None):
        variables = list(self.model.variables)
        optimizer = self.model.optimizer
        if optimizer is not None and optimizer.built:
            variables += list(optimizer.variables)
        broadcast_variables(variables)

    def on_epoch_begin(self, epoch, logs=None):
        self.model._keras_ssm_samples = 0

    def on_epoch_end(self, epoch, logs=None):
        import torch

        if not logs:
            return
        names = sorted(
            k for k, v in logs.items() if isinstance(v, (int, float, np.number))
        )
        samples = float(self.model._keras_ssm_samples)
        values = [float(logs[k]) * samples for k in names] + [samples]
        # NCCL reduces device tensors only; gloo host tensors.
        device = "cuda" if _dist().get_backend() == "nccl" else "cpu"
        packed = torch.tensor(values, dtype=torch.float64, device=device)
        _collective("Averaging the epoch logs", _dist().all_reduce, packed)
        total = float(packed[-1])
        for name, value in zip(names, packed[:-1].tolist()):
            logs[name] = value / total


def prepare_model(model):
    """Makes `model.fit` train data-parallel over the torch process group.

    Call it on every rank, after `initialize()`, with the same model
    architecture and random seed on every rank (rank 0's initial weights
    are broadcast anyway). It may be called before or after `compile`.
    The model's step is not compiled with `torch.compile` (collectives run
    between the backward pass and the update).

    Args:
        model: a Keras model (any subclass).

    Returns:
        The same model, changed in place.

    Example:

    ```python
    # torchrun --nproc_per_node=2 train.py
    from keras_ssm import distribute

    distribute.initialize()
    model = build_model()
    model.compile(optimizer=keras_ssm.optimizers.ssm_adamw(1e-3), loss=...)
    distribute.prepare_model(model)
    model.fit(x, y, batch_size=64)  # 64 samples per step over all ranks
    ```
    """
    if getattr(model, "_keras_ssm_data_parallel", False):
        return model
    dist = _dist()
    if not dist.is_initialized():
        raise RuntimeError(
            "Call keras_ssm.distribute.initialize() before prepare_model()."
        )
    rank, world_size = dist.get_rank(), dist.get_world_size()
    model._keras_ssm_data_parallel = True
    model._keras_ssm_batch_share = 1.0
    model._keras_ssm_samples = 0
    train_step = model.train_step
    fit = model.fit

    def sharded_train_step(self, data):
        _wrap_optimizer(self)
        global_size = _batch_size(data)
        start, stop = _shard_bounds(global_size, rank, world_size)
        self._keras_ssm_batch_share = (stop - start) / global_size
        self._keras_ssm_samples += stop - start
        return train_step(_slice_batch(data, start, stop))

    def data_parallel_fit(self, *args, callbacks=None, verbose="auto", **kw):
        self.jit_compile = False
        callbacks = [_AverageEpochLogs()] + list(callbacks or [])
        if rank != 0:
            verbose = 0
        return fit(*args, callbacks=callbacks, verbose=verbose, **kw)

    model.train_function = None  # rebuilt around the sharded step
    model.train_step = types.MethodType(sharded_train_step, model)
    model.fit = types.MethodType(data_parallel_fit, model)
    return model
