"""`--data-parallel`: the distribution scope of the command lines."""

import contextlib


def data_parallel_scope(enabled=False, num_devices=None):
    """Context manager for `--data-parallel`: build, compile and fit inside.

    Delegates to `keras_ssm.distribute.data_parallel_scope` when `enabled`:
    all local devices in one process, or every process of a run started by
    torchrun (PyTorch), with `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`
    and `JAX_PROCESS_ID` (JAX) or with `TF_CONFIG` (TensorFlow). A no-op
    context otherwise.

    Args:
        enabled: whether to replicate the model across devices.
        num_devices: number of devices (None: all local devices).

    Returns:
        A context manager.

    Example:

        with data_parallel_scope(args.data_parallel):
            model = build_model()
    """
    from applications.common.errors import UsageError
    from keras_ssm import distribute

    if not enabled:
        if distribute.process_count() > 1:
            raise UsageError(
                f"This process is one of {distribute.process_count()} "
                "started by a multi-process launcher (torchrun, JAX_* "
                "variables or TF_CONFIG); add --data-parallel so that they "
                "train one model together."
            )
        return contextlib.nullcontext()
    return distribute.data_parallel_scope(enabled=True, num_devices=num_devices)
