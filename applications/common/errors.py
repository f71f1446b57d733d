"""How the command lines fail: one line naming the argument or file.

`run_cli(main)` runs a CLI's `main`. Any error ends the process with a
non-zero status and one line on stderr, `Error: <what went wrong>`;
`--debug` on the command line shows the full traceback instead. Code that
knows which argument or file is at fault raises `UsageError` (exit status
2, like argparse) or lets the library's own `ValueError` through: both
name it.
"""

import sys


class UsageError(ValueError):
    """A command-line argument or a file it names cannot be used."""


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; the run was stopped."""


class CorruptedFileError(RuntimeError):
    """A checkpoint, backup or result file cannot be read back."""


def one_line(error):
    """The message of `error` on one line (a chained cause included)."""
    text = str(error).strip() or type(error).__name__
    text = " ".join(text.split())
    if isinstance(error, (OSError, KeyError)) and not isinstance(
        error, FileNotFoundError
    ):
        text = f"{type(error).__name__}: {text}"
    return text


def exit_status(error):
    """2 for usage errors (as argparse), 1 for everything else."""
    return 2 if isinstance(error, UsageError) else 1


def run_cli(main, argv=None):
    """Runs `main(argv)`; an error exits with one line, no traceback.

    Args:
        main: the CLI's `main(argv)`.
        argv: the arguments (default `sys.argv[1:]`); `--debug` among them
            lets the exception and its traceback through.

    Returns:
        What `main` returned.

    Example:

        if __name__ == "__main__":
            sys.exit(run_cli(main))
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 (the one-line contract)
        if "--debug" in argv:
            raise
        print(
            f"Error: {one_line(error)} (--debug shows the traceback)",
            file=sys.stderr,
        )
        sys.exit(exit_status(error))


def exit_on_divergence(main, argv=None):
    """Kept for callers of the earlier name: the same as `run_cli`."""
    return run_cli(main, argv)
