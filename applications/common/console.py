"""What the command lines print, and what they keep off the terminal.

- `quiet_tensorflow()` and `import_keras_quietly()`: TensorFlow's C++
  start-up notices are hidden unless the user set `TF_CPP_MIN_LOG_LEVEL`.
- `say(...)`: `print` in process 0 only, so that a multi-process run shows
  one header, one progress bar and one result.
- `format_seconds(seconds)`: durations for log lines.
"""

import os
import sys
import tempfile

# A log level the user chose; without one the CLIs hide TensorFlow's
# start-up logs.
_USER_TF_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")


def quiet_tensorflow():
    """Hides TensorFlow's C++ logs (CUDA probing on CPU machines) by default.

    Only a default: a `TF_CPP_MIN_LOG_LEVEL` the user set is kept. Must run
    before TensorFlow is imported (the applications call it on import).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


quiet_tensorflow()


def import_keras_quietly():
    """Imports Keras with TensorFlow's C++ start-up notices hidden.

    TensorFlow, when it is the backend, writes its oneDNN notice and CUDA
    probing messages to the process's stderr before its log level applies.
    Unless the user set `TF_CPP_MIN_LOG_LEVEL`, stderr is captured during
    the import and shown only if the import fails. Nothing else is imported:
    under JAX or PyTorch, TensorFlow stays out of the process.
    """
    if _USER_TF_LOG_LEVEL is not None or "keras" in sys.modules:
        import keras  # noqa: F401

        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def is_chief():
    """True in the process that prints and writes (always, when alone)."""
    from keras_ssm import distribute

    return distribute.is_chief()


def say(*args, **kwargs):
    """`print(*args, **kwargs)` in process 0 of a run only.

    Example:

    >>> say("Task listops, model s4d")  # once, however many processes
    """
    if is_chief():
        print(*args, **kwargs)


def format_seconds(seconds):
    """`"1h 02m 03s"`-style duration for log lines."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
