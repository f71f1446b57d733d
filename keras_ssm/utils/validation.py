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


def check_choice(name, value, choices):
    """`value` as a str, one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"`{name}` must be one of {tuple(choices)}, got {_describe(value)}."
        )
    return str(value)


def check_dropout(name, value):
    """A dropout rate: a float in [0, 1)."""
    return check_float(name, value, minimum=0.0, maximum=1.0, max_open=True)


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
