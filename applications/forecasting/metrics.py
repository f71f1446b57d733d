"""MSE and MAE of forecasts on the standardised scale, as papers report them.

The Informer protocol averages over every test window, forecast step and
target series, all in the units of the training-set standardisation.
"""

import numpy as np


def _check(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"`y_true` {y_true.shape} and `y_pred` {y_pred.shape} must have "
            "the same shape (windows, h, targets)."
        )
    return y_true, y_pred


def mse(y_true, y_pred):
    """Mean squared error: mean over all entries of (y_pred - y_true)^2."""
    y_true, y_pred = _check(y_true, y_pred)
    return float(np.mean(np.square(y_pred - y_true)))


def mae(y_true, y_pred):
    """Mean absolute error: mean over all entries of |y_pred - y_true|."""
    y_true, y_pred = _check(y_true, y_pred)
    return float(np.mean(np.abs(y_pred - y_true)))


def predict_windows(model, windows, batch_size=256):
    """(targets, forecasts) of every window of a `ForecastWindows`, in order.

    Args:
        model: a forecaster (batch, input_size, inputs) -> (batch, h, k).
        windows: a `ForecastWindows`.
        batch_size: prediction batch size.

    Returns:
        Two float64 arrays of shape (windows, h, targets).
    """
    inputs, targets = windows.arrays()
    # Pad to whole batches so that compiled backends trace one shape only;
    # the padded rows are cut off again.
    count = len(inputs)
    padded = -(-count // batch_size) * batch_size
    inputs = np.concatenate(
        [inputs, np.repeat(inputs[-1:], padded - count, axis=0)]
    )
    forecasts = model.predict(inputs, batch_size=batch_size, verbose=0)
    forecasts = np.asarray(forecasts, np.float64)[:count]
    return targets.astype(np.float64), forecasts


def evaluate_forecaster(model, windows, batch_size=256):
    """{"mse", "mae"} of `model` over all windows of a split.

    Example:

    >>> scores = evaluate_forecaster(model, data.test)
    >>> scores["mse"]
    """
    targets, forecasts = predict_windows(model, windows, batch_size)
    return {"mse": mse(targets, forecasts), "mae": mae(targets, forecasts)}


def persistence_scores(windows, target_columns):
    """{"mse", "mae"} of the last-value (persistence) forecast of a split.

    Every step of the horizon repeats the last input value of each target
    column: the floor any learned forecaster has to beat.

    Args:
        windows: a `ForecastWindows`.
        target_columns: indices of the targets among the input columns.

    Example:

    >>> persistence_scores(data.test, data.target_columns)["mse"]
    """
    inputs, targets = windows.arrays()
    last = inputs[:, -1:, list(target_columns)]
    forecasts = np.broadcast_to(last, targets.shape)
    return {"mse": mse(targets, forecasts), "mae": mae(targets, forecasts)}
