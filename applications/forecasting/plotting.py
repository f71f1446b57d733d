"""A PNG of forecast against truth for a few test windows."""

import numpy as np


def plot_forecasts(
    path, inputs, targets, forecasts, windows=(0,), column=0, title=None
):
    """Draws history, truth and forecast of `column` for some windows.

    Args:
        path: the PNG to write (its directory must exist).
        inputs: (windows, input_size, inputs) input windows.
        targets: (windows, h, targets) true values.
        forecasts: (windows, h, targets) forecasts.
        windows: indices of the windows to draw, one panel each.
        column: target column to draw; its input column is the same index
            for "S"/"M" and the last input column ("OT") for "MS".
        title: figure title.

    Example:

    >>> plot_forecasts("forecast.png", x, y, y_hat, windows=(0, 500, 1000))
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    windows = [int(w) for w in windows if 0 <= int(w) < len(targets)]
    if not windows:
        raise ValueError(f"No window index in range [0, {len(targets)}).")
    input_column = column if inputs.shape[-1] == targets.shape[-1] else -1
    figure, axes = plt.subplots(
        len(windows), 1, figsize=(9, 2.4 * len(windows)), squeeze=False
    )
    input_size, h = inputs.shape[1], targets.shape[1]
    past = np.arange(-input_size, 0)
    future = np.arange(h)
    for axis, window in zip(axes[:, 0], windows):
        axis.plot(
            past, inputs[window, :, input_column], color="0.5", label="history"
        )
        axis.plot(future, targets[window, :, column], color="k", label="truth")
        axis.plot(
            future,
            forecasts[window, :, column],
            color="tab:red",
            label="forecast",
        )
        axis.axvline(-0.5, color="0.8", linewidth=0.8)
        axis.set_ylabel(f"window {window}")
    axes[0, 0].legend(loc="upper left", fontsize="small", ncol=3)
    axes[-1, 0].set_xlabel("steps relative to the forecast start")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
