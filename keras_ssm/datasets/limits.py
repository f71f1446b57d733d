"""Checks of data-set sizes before any memory is allocated.

`np.zeros` reserves memory lazily, so an absurd size (a billion examples)
would not fail at once: it would run the generator for hours and then be
killed. Sizes are therefore checked against the machine's memory first.
"""

import os

from keras_ssm.utils.validation import check_int

GIB = 1024**3


def physical_memory():
    """Bytes of physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def check_sizes(**sizes):
    """Each size as a Python int >= 1, named in the error when it is not.

    Example:

    >>> check_sizes(num_train=8, num_test=2)
    {'num_train': 8, 'num_test': 2}
    """
    return {
        name: check_int(name, value, minimum=1) for name, value in sizes.items()
    }


def check_memory(what, num_bytes, arguments):
    """Refuses data that would not fit in this machine's memory.

    Args:
        what: the data, e.g. "ListOps with num_train=10**9".
        num_bytes: the estimated size of the arrays to be made.
        arguments: the names of the arguments that set the size (for the
            message).

    Raises:
        ValueError: when `num_bytes` exceeds the physical memory.
    """
    total = physical_memory()
    if total is not None and num_bytes > total:
        raise ValueError(
            f"{what} needs about {num_bytes / GIB:.1f} GiB of memory, more "
            f"than this machine's {total / GIB:.1f} GiB; lower "
            f"{', '.join(f'`{a}`' for a in arguments)}."
        )


def check_examples_memory(data, counts, bytes_per_example, **setting):
    """`check_memory` for `sum(counts)` examples of `bytes_per_example`.

    Args:
        data: the data set's name, e.g. "ListOps".
        counts: `{argument: number of examples}`, e.g. `{"num_train": 8}`.
        bytes_per_example: the estimated bytes of one example.
        **setting: the arguments that set an example's size, e.g.
            `max_length=64` (named in the message with `counts`).

    Example:

    >>> check_examples_memory("ListOps", {"num_train": 8}, 260, max_length=64)
    """
    arguments = {**counts, **setting}
    check_memory(
        f"{data} with " + ", ".join(f"{k}={v}" for k, v in arguments.items()),
        sum(counts.values()) * bytes_per_example,
        tuple(arguments),
    )
