"""Temporal subsampling: coarser inputs with the SSM step dt scaled to match.

A continuous-time model ("Continuity Laws for Sequential Models", Yu, Lyu,
Erichson) sees the same signal whatever the sampling step, provided its dt
follows the step. Averaging windows of `factor` samples gives a sequence
`factor` times shorter whose step is `factor` times longer, so the SSM
layers run with `dt_scale` multiplied by `factor`.
"""

import contextlib
import numbers

import numpy as np
from keras import ops


def _check_factor(factor, name="factor"):
    if not isinstance(factor, numbers.Real) or isinstance(factor, bool):
        raise ValueError(f"`{name}` must be a number > 0, got {factor!r}.")
    if not factor > 0:
        raise ValueError(f"`{name}` must be > 0, got {factor}.")


def temporal_subsample(inputs, factor):
    """Averages non-overlapping windows of `factor` steps along time.

    out[b, i, h] = mean over s = 0..factor-1 of inputs[b, i * factor + s, h].
    Trailing steps that do not fill a window are dropped. NumPy inputs give
    a NumPy array (for data pipelines); tensors give a tensor. Inside a
    model, `keras.layers.AveragePooling1D(factor)` computes the same.

    Args:
        inputs: array or tensor of shape `(batch, length, channels)`.
        factor: window size, an integer >= 1 and <= length.

    Returns:
        Shape `(batch, length // factor, channels)`.

    Example:

    >>> x = np.arange(8.0).reshape(1, 8, 1)
    >>> temporal_subsample(x, 4)[0, :, 0]
    array([1.5, 5.5])
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)):
        raise ValueError(f"`factor` must be an integer >= 1, got {factor!r}.")
    shape = tuple(inputs.shape)
    if len(shape) != 3:
        raise ValueError(
            "`inputs` must have shape (batch, length, channels); got shape "
            f"{shape}."
        )
    length = shape[1]
    if factor < 1 or (length is not None and factor > length):
        raise ValueError(
            f"`factor` must be in [1, length={length}], got {factor}."
        )
    windows = length // factor
    if isinstance(inputs, np.ndarray):
        cut = inputs[:, : windows * factor]
        return cut.reshape(shape[0], windows, factor, shape[2]).mean(axis=2)
    cut = inputs[:, : windows * factor]
    cut = ops.reshape(cut, (-1, windows, factor, shape[2]))
    return ops.mean(cut, axis=2)


def dt_scaled_layers(model):
    """The layers of `model` (itself included) that have a `dt_scale`."""
    layers = model._flatten_layers(include_self=True, recursive=True)
    return [
        layer
        for layer in layers
        if isinstance(getattr(layer, "dt_scale", None), numbers.Real)
    ]


def scale_dt(model, factor):
    """Multiplies `dt_scale` of every SSM layer in `model` by `factor`.

    Use it before `compile` when training on inputs subsampled by `factor`
    (`temporal_subsample`); `dt_scale` is part of the layers' configs, so
    saved models keep it.

    Args:
        model: a layer or model containing S4D / SelectiveSSM layers.
        factor: the factor (> 0) on dt.

    Returns:
        The list of layers changed.

    Example:

    >>> model = keras.Sequential([keras_ssm.layers.S4D(d_state=4)])
    >>> x_coarse = temporal_subsample(np.ones((2, 64, 3)), 4)  # 16 steps
    >>> [layer.dt_scale for layer in scale_dt(model, 4)]
    [4.0]
    >>> model.compile(optimizer="adam", loss="mse")  # then fit on x_coarse
    """
    _check_factor(factor)
    layers = dt_scaled_layers(model)
    if not layers:
        raise ValueError(
            f"`model` ({model.name}) has no layer with a `dt_scale` "
            "(S4D, SelectiveSSM, ...)."
        )
    for layer in layers:
        layer.dt_scale = layer.dt_scale * factor
    return layers


@contextlib.contextmanager
def dt_scaled(model, factor):
    """Context manager: `scale_dt(model, factor)` undone on exit.

    The scaled dt applies to eager calls `model(x)` inside the block; an
    already traced `predict` / `fit` function keeps the old value.

    Example:

    >>> model = keras.Sequential([keras_ssm.layers.S4D(d_state=4)])
    >>> x_fine = np.ones((2, 32, 3), "float32")
    >>> with dt_scaled(model, 0.5):  # inputs sampled twice as finely
    ...     y_fine = model(x_fine)
    >>> model.layers[0].dt_scale  # restored on exit
    1.0
    """
    layers = dt_scaled_layers(model)
    saved = [layer.dt_scale for layer in layers]
    scale_dt(model, factor)
    try:
        yield layers
    finally:
        for layer, value in zip(layers, saved):
            layer.dt_scale = value
