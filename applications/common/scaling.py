"""How costs grow: parameter-matched widths and log-log slopes.

Shared by the experiments and the benchmarks, which compare models at the
same parameter count and report how time and memory grow with length.
"""

import numpy as np


def matched_width(count, target, multiple=4, start=8, limit=1 << 16):
    """The width whose parameter count is closest to `target`.

    Widths are multiples of `multiple` (e.g. 4, so that 4 attention heads
    divide them), from `start` up to `limit`. `count(width)` must grow with
    the width; a doubling search then a bisection need few model builds.
    Between two equally close widths the smaller wins.

    Args:
        count: function `count(width)` -> the parameter count to match.
        target: the parameter count to reach.
        multiple: the step of the widths.
        start: the smallest width tried.
        limit: the largest width tried.

    Returns:
        `(width, count(width))`.

    Example:

    >>> matched_width(lambda w: w * w, 1000)
    (32, 1024)
    """
    counts = {}

    def at(units):
        width = units * multiple
        if width not in counts:
            counts[width] = count(width)
        return counts[width]

    low = max(1, -(-start // multiple))
    if at(low) >= target:
        return low * multiple, at(low)
    high = 2 * low
    while at(high) < target and high * multiple < limit:
        low, high = high, 2 * high
    while high - low > 1:  # at(low) < target <= at(high), or at the limit
        middle = (low + high) // 2
        if at(middle) < target:
            low = middle
        else:
            high = middle
    best = min((low, high), key=lambda u: (abs(at(u) - target), u))
    return best * multiple, at(best)


def scaling_exponent(lengths, values):
    """Slope of log(value) against log(length): ~1 linear, ~2 quadratic.

    Pairs with a missing value (None: the size failed) are left out.

    Args:
        lengths: the sizes (e.g. sequence lengths).
        values: the measurement at each size (time, memory), or None.

    Returns:
        The least-squares slope, or None with fewer than two measured
        sizes.

    Example:

    >>> round(scaling_exponent([1, 2, 4], [3.0, 12.0, 48.0]), 6)
    2.0
    """
    pairs = [(n, v) for n, v in zip(lengths, values) if v is not None]
    if len(pairs) < 2:
        return None
    x = np.log(np.asarray([p[0] for p in pairs], dtype=np.float64))
    y = np.log(np.maximum(np.asarray([p[1] for p in pairs], np.float64), 1e-12))
    return float(np.polyfit(x, y, 1)[0])
