"""Constructor-argument checks shared by every keras-ssm layer.

Each helper returns the value as a plain Python object (bool, int, float or
str), so that a layer's `get_config` stays JSON-serialisable whatever the
caller passed (NumPy scalars included), and raises an `ArgumentTypeError`
(wrong kind of value) or a `ValueError` (right kind, out of range) whose
message names the argument and says what it accepts.

Example:

>>> check_int("d_state", np.int64(8), minimum=1)
8
>>> check_float("dropout", 0.1, minimum=0.0, maximum=1.0, max_open=True)
0.1
"""

import math
import numbers

import keras
import numpy as np


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (e.g. a string where a bool belongs).

    A `TypeError`, and also a `ValueError`: keras-ssm 0.1.0 raised
    `ValueError` for some of these, and code that catches it keeps working.
    """


def _describe(value):
    return f"{value!r} (type {type(value).__name__})"


def _interval(minimum, maximum, min_open, max_open):
    """Human-readable range, e.g. "in [0, 1)", "> 0" or ""."""
    if minimum is not None and maximum is not None:
        left = "(" if min_open else "["
        right = ")" if max_open else "]"
        return f" in {left}{minimum}, {maximum}{right}"
    if minimum is not None:
        return f" {'>' if min_open else '>='} {minimum}"
    if maximum is not None:
        return f" {'<' if max_open else '<='} {maximum}"
    return ""


def _check_range(name, value, kind, minimum, maximum, min_open, max_open):
    too_low = minimum is not None and (
        value <= minimum if min_open else value < minimum
    )
    too_high = maximum is not None and (
        value >= maximum if max_open else value > maximum
    )
    if too_low or too_high:
        interval = _interval(minimum, maximum, min_open, max_open)
        raise ValueError(f"`{name}` must be {kind}{interval}, got {value!r}.")


def is_bool(value):
    return isinstance(value, (bool, np.bool_))


def check_bool(name, value):
    """`value` as a Python bool; only True/False (or NumPy bools) pass.

    Strings such as "false" are refused rather than read as truthy.
    """
    if not is_bool(value):
        raise ArgumentTypeError(
            f"`{name}` must be a bool (True or False), got {_describe(value)}."
        )
    return bool(value)


def check_int(
    name,
    value,
    minimum=None,
    maximum=None,
    allow_none=False,
):
    """`value` as a Python int: Python and NumPy integers, not bools."""
    if value is None and allow_none:
        return None
    if is_bool(value) or not isinstance(value, (numbers.Integral, np.integer)):
        interval = _interval(minimum, maximum, False, False)
        none = " or None" if allow_none else ""
        raise ArgumentTypeError(
            f"`{name}` must be an integer{interval}{none}, got "
            f"{_describe(value)}."
        )
    value = int(value)
    _check_range(name, value, "an integer", minimum, maximum, False, False)
    return value


def check_float(
    name,
    value,
    minimum=None,
    maximum=None,
    min_open=False,
    max_open=False,
    finite=True,
    allow_none=False,
):
    """`value` as a Python float.

    Accepts Python and NumPy integers and floats; refuses bools, strings,
    None (unless `allow_none`) and, with `finite=True`, NaN and infinities.
    `min_open`/`max_open` make the bounds exclusive.
    """
    if value is None and allow_none:
        return None
    interval = _interval(minimum, maximum, min_open, max_open)
    kind = "a finite number" if finite else "a number"
    if is_bool(value) or not isinstance(
        value, (numbers.Real, np.integer, np.floating)
    ):
        none = " or None" if allow_none else ""
        raise ArgumentTypeError(
            f"`{name}` must be {kind}{interval}{none}, got {_describe(value)}."
        )
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"`{name}` must be {kind}{interval}, got {value!r}.")
    _check_range(name, value, kind, minimum, maximum, min_open, max_open)
    return value


def check_dt_range(dt_min, dt_max, strict=True):
    """The initial step-size range `(dt_min, dt_max)` as floats.

    Both positive, with dt_min < dt_max (`strict`) or dt_min <= dt_max.
    """
    dt_min = check_float("dt_min", dt_min, minimum=0.0, min_open=True)
    dt_max = check_float("dt_max", dt_max, minimum=0.0, min_open=True)
    if dt_min > dt_max or (strict and dt_min == dt_max):
        relation = "<" if strict else "<="
        raise ValueError(
            f"`dt_min` and `dt_max` must satisfy 0 < dt_min {relation} dt_max,"
            f" got dt_min={dt_min}, dt_max={dt_max}."
        )
    return dt_min, dt_max


def check_instance(name, value, types, kind):
    """`value`, which must be an instance of `types` (described as `kind`).

    Example:

    >>> check_instance("text", "abc", str, "a string")
    'abc'
    """
    if not isinstance(value, types):
        raise ArgumentTypeError(
            f"`{name}` must be {kind}, got {type(value).__name__}."
        )
    return value


def check_choice(name, value, choices):
    """`value` as a str, one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"`{name}` must be one of {tuple(choices)}, got {_describe(value)}."
        )
    return str(value)


def check_fraction(name, value):
    """A fraction of a whole that keeps some of it: a float in [0, 1)."""
    return check_float(name, value, minimum=0.0, maximum=1.0, max_open=True)


def check_open_unit(name, value):
    """A float strictly between 0 and 1, e.g. a radius inside the unit disk."""
    return check_float(
        name, value, minimum=0.0, maximum=1.0, min_open=True, max_open=True
    )


def check_dropout(name, value):
    """A dropout rate: a float in [0, 1)."""
    return check_fraction(name, value)


def _check_keras_object(name, value, module, kind):
    try:
        return module.get(value)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`{name}` must be a Keras {kind} (an instance, a name such as "
            f"those of `keras.{kind}s`, a config dict or None), got "
            f"{_describe(value)}: {error}"
        ) from None


def check_initializer(name, value):
    """A Keras initializer (instance, name, config or None -> None)."""
    return _check_keras_object(name, value, keras.initializers, "initializer")


def check_regularizer(name, value):
    """A Keras regularizer (instance, name, config or None -> None)."""
    return _check_keras_object(name, value, keras.regularizers, "regularizer")


def check_activation(name, value):
    """A Keras activation (callable, name or None -> linear)."""
    return _check_keras_object(name, value, keras.activations, "activation")


def check_class_labels(name, labels, num_classes):
    """Class labels as a NumPy array, checked against `num_classes`.

    Sparse labels (shape `(n,)` or `(n, 1)`) must be integers (or floats
    holding integers) in `[0, num_classes)`; rows of one-hot or class
    probabilities (shape `(n, num_classes)`) must have `num_classes`
    columns of finite values in [0, 1]. JAX gathers out-of-range labels
    without an error, so an unchecked label 15 with 10 classes trains on a
    wrong but finite loss.

    Args:
        name: how the message names the labels, e.g. "`y`" or "the labels
            of data.tsv".
        labels: array-like labels (NumPy or a backend tensor).
        num_classes: the number of classes (>= 1).

    Returns:
        The labels as a NumPy array.

    Raises:
        ValueError: empty, non-numeric, non-finite or out-of-range labels;
            the message names them and the accepted range.

    Example:

    >>> check_class_labels("`y`", [0, 3, 9], num_classes=10).tolist()
    [0, 3, 9]
    """
    y = np.asarray(
        keras.ops.convert_to_numpy(labels)
        if keras.ops.is_tensor(labels)
        else labels
    )
    if y.size == 0:
        raise ValueError(f"{name} is empty: there are no labels to train on.")
    if y.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold numeric class labels, got dtype {y.dtype}."
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(f"{name} holds non-finite labels (NaN or inf).")
    sparse = y.ndim <= 1 or (y.ndim == 2 and y.shape[-1] == 1)
    last = num_classes - 1
    if sparse:
        if y.dtype.kind == "f" and np.any(y != np.round(y)):
            raise ValueError(
                f"{name} must hold integer class labels in [0, {last}]; "
                "it holds fractional values."
            )
        low, high = y.min(), y.max()
        if low < 0 or high > last:
            raise ValueError(
                f"{name} holds class labels in [{low:g}, {high:g}], but "
                f"num_classes={num_classes} accepts only [0, {last}]."
            )
        return y
    if y.shape[-1] != num_classes:
        raise ValueError(
            f"{name} has shape {y.shape}: one label a row (shape (n,)) or "
            f"{num_classes} class probabilities a row (num_classes="
            f"{num_classes}), not {y.shape[-1]}."
        )
    if y.min() < 0 or y.max() > 1:
        raise ValueError(
            f"{name} holds one-hot rows or class probabilities, which must "
            f"lie in [0, 1]; got values in [{y.min():g}, {y.max():g}]."
        )
    return y


def _has_data(value):
    """Whether `value` is array-like data whose batch size can be read."""
    return isinstance(value, (np.ndarray, list)) or keras.ops.is_tensor(value)


def check_classifier_data(num_classes, x=None, y=None, validation_data=None):
    """Checks in-memory classification data before `fit` or `evaluate`.

    Inputs given as arrays or tensors must hold examples, and labels given
    so must pass `check_class_labels`. Datasets, generators and
    `PyDataset`s are left to their producers (the loaders of
    `keras_ssm.datasets` check their labels).

    Args:
        num_classes: the classifier's number of classes.
        x: the inputs (an array, a tensor, or a list or dict of them).
        y: the labels, or None.
        validation_data: `(x_val, y_val)` or `(x_val, y_val, weights)`, or
            anything else `fit` accepts (not checked).

    Raises:
        ValueError: naming `x`, `y` or `validation_data`.
    """
    structured = isinstance(x, (tuple, list, dict)) or _has_data(x)
    for leaf in keras.tree.flatten(x) if structured else ():
        shape = getattr(leaf, "shape", None)
        if shape is not None and len(shape) and shape[0] == 0:
            raise ValueError(
                f"`x` holds no examples (an input of shape {tuple(shape)})."
            )
    if y is not None and _has_data(y):
        check_class_labels("`y`", y, num_classes)
    if isinstance(validation_data, (tuple, list)) and len(validation_data) > 1:
        if _has_data(validation_data[1]):
            check_class_labels(
                "The labels of `validation_data`",
                validation_data[1],
                num_classes,
            )
