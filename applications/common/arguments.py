"""argparse types and the options every application command line takes.

The types turn a bad value into argparse's one-line usage error naming the
option (`argument --epochs: must be >= 1, got 0`).
"""

import argparse
import math
import sys

BACKENDS = ("jax", "tensorflow", "torch")


def _number(text, kind):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got "
            f"{text!r}"
        ) from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"expected a finite number, got {text!r}"
        )
    return value


def _bounded(kind, accepts, describe):
    def parse(text):
        value = _number(text, kind)
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"{describe}, got {value}")
        return value

    return parse


positive_int = _bounded(int, lambda v: v >= 1, "must be >= 1")
positive_int.__doc__ = "argparse type: an integer >= 1."
nonnegative_int = _bounded(int, lambda v: v >= 0, "must be >= 0")
nonnegative_int.__doc__ = "argparse type: an integer >= 0."
positive_float = _bounded(float, lambda v: v > 0, "must be > 0")
positive_float.__doc__ = "argparse type: a finite float > 0."
nonnegative_float = _bounded(float, lambda v: v >= 0, "must be >= 0")
nonnegative_float.__doc__ = "argparse type: a finite float >= 0."
rate = _bounded(float, lambda v: 0 <= v < 1, "must be in [0, 1)")
rate.__doc__ = "argparse type: a dropout rate in [0, 1)."


def finite_float(text):
    """argparse type: a finite float (no nan or inf)."""
    return _number(text, float)


class _DeprecatedOption(argparse.Action):
    """Stores the value of an old option name, with one warning line."""

    def __init__(self, option_strings, dest, new=None, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            f"warning: {option_string} is deprecated: use {self.new}.",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_renamed_option(parser, new, old, **kwargs):
    """Adds the option `new` and its deprecated name `old`.

    `old` sets the same value (hidden from `--help`) and prints one
    warning line naming both, e.g. `--d-model` for `--hidden-dim`.

    Args:
        parser: an `argparse.ArgumentParser` or argument group.
        new: the option's name, e.g. `"--hidden-dim"`.
        old: its deprecated name, e.g. `"--d-model"`.
        **kwargs: `add_argument`'s keywords of `new` (`type`, `default`,
            `help`, ...).

    Returns:
        The action of `new`.

    Example:

    >>> parser = argparse.ArgumentParser()
    >>> _ = add_renamed_option(parser, "--hidden-dim", "--d-model", type=int)
    >>> parser.parse_args(["--d-model", "8"]).hidden_dim
    8
    """
    action = parser.add_argument(new, **kwargs)
    parser.add_argument(
        old,
        dest=action.dest,
        type=kwargs.get("type"),
        action=_DeprecatedOption,
        new=new,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
    return action


def add_backend_argument(parser):
    """`--backend`, read again by `select_backend` before Keras loads."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="Keras backend (default: $KERAS_BACKEND or Keras' default).",
    )


def add_debug_argument(parser):
    """`--debug`: show the traceback of an error (see `errors.run_cli`)."""
    parser.add_argument(
        "--debug",
        action="store_true",
        help="On an error, show the full traceback instead of one line.",
    )


def add_training_arguments(parser, epochs=None, batch_size=None):
    """Adds the options shared by every application CLI to `parser`.

    Options: `--backend`, `--epochs`, `--batch-size`, `--output-dir`,
    `--resume`, `--seed`, `--data-parallel`, `--num-devices`,
    `--steps-per-epoch`, `--verbose`, `--debug`. `None` for `--epochs` and
    `--batch-size` means "use the preset's value".

    Args:
        parser: an `argparse.ArgumentParser`.
        epochs: default of `--epochs` (None: the preset's).
        batch_size: default of `--batch-size` (None: the preset's).

    Returns:
        The parser, for chaining.

    Example:

    >>> parser = add_training_arguments(argparse.ArgumentParser())
    >>> parser.parse_args(["--epochs", "3"]).epochs
    3
    """
    group = parser.add_argument_group("training")
    add_backend_argument(group)
    group.add_argument("--epochs", type=positive_int, default=epochs)
    group.add_argument("--batch-size", type=positive_int, default=batch_size)
    group.add_argument(
        "--output-dir",
        default=None,
        help="Directory of checkpoints, history.csv and result.json.",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="Continue from the last finished epoch saved in --output-dir; "
        "a finished run is left as it is.",
    )
    group.add_argument("--seed", type=int, default=0)
    group.add_argument(
        "--data-parallel",
        action="store_true",
        help="Replicate the model on all local devices and split batches "
        "(keras.distribution under JAX, MirroredStrategy under TF), or "
        "over all processes of a torchrun / JAX_* / TF_CONFIG launch.",
    )
    group.add_argument(
        "--num-devices",
        type=positive_int,
        default=None,
        help="Devices for --data-parallel (default: all).",
    )
    group.add_argument(
        "--steps-per-epoch",
        type=positive_int,
        default=None,
        help="Limit each epoch to this many batches (quick runs).",
    )
    group.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=(0, 1, 2),
        help="Keras fit verbosity: 0 silent, 1 progress bar, 2 one line "
        "per epoch.",
    )
    add_debug_argument(group)
    return parser
