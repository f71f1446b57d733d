"""Checks of the data a command line is about to train on."""

import numpy as np

from applications.common.errors import UsageError


def check_labels(labels, num_classes, what="labels"):
    """Refuses class labels outside `[0, num_classes)`.

    Some backends (JAX) train on an out-of-range label without an error,
    with a meaningless loss; the command lines check first.

    Args:
        labels: integer class labels (any shape).
        num_classes: the model's number of classes.
        what: the data's name, for the error.

    Raises:
        UsageError: naming `what`, the offending range and `num_classes`.

    Example:

    >>> check_labels(np.array([0, 3, 9]), 10)
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        raise UsageError(f"{what}: no examples.")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or np.any(labels % 1):
            raise UsageError(f"{what}: class labels must be integers.")
    low, high = labels.min(), labels.max()
    if low < 0 or high >= num_classes:
        raise UsageError(
            f"{what}: class labels must be in [0, {num_classes}) for "
            f"num_classes={num_classes}; found labels from {int(low)} to "
            f"{int(high)}."
        )
