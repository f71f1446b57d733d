"""Results as JSON: plain values, the run's environment, atomic files."""

import datetime
import json
import math
import os
import platform
import shlex


def json_safe(value):
    """NumPy scalars and arrays, tuples and odd types as plain JSON values.

    Non-finite floats become the strings "nan", "inf" and "-inf", so that
    the file stays standard JSON.

    Example:

    >>> json_safe({"x": np.float32(0.5), "curve": np.arange(2)})
    {'x': 0.5, 'curve': [0, 1]}
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def environment(command=None):
    """Date, hardware, backend, versions and (optionally) the command.

    Args:
        command: the command that produced the result, as a list of words;
            stored shell-quoted under `"command"`.

    Returns:
        A dict with `date` (UTC), `platform`, `processor`, `cpu_count`,
        `python`, `backend`, `keras` and, given `command`, `command`.
    """
    import keras

    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
    }
    if command is not None:
        env["command"] = shlex.join(list(command))
    return env


def write_json(path, payload):
    """Writes `json_safe(payload)` to `path` (indented), atomically.

    Returns:
        The dict as written.
    """
    from applications.common.run_files import atomic_path

    payload = json_safe(payload)
    with atomic_path(path) as partial:
        with open(partial, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")
    return payload


def read_json(path):
    """The JSON file at `path`; a damaged one raises `CorruptedFileError`."""
    from applications.common.errors import CorruptedFileError

    try:
        with open(path) as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as error:
        raise CorruptedFileError(
            f"{path} is damaged ({error}); delete it to start afresh."
        ) from None


def write_result(path, result):
    """Writes `result` plus `environment()` (as `metadata`) to `path`.

    In a multi-process run only process 0 writes. The file is written to a
    temporary name and renamed, so a reader never sees half a file.

    Args:
        path: the JSON file (its directory is created).
        result: a dict of results (metrics, arguments, timings).

    Returns:
        The dict that was written.

    Example:

    >>> write_result("runs/x/result.json", {"test_accuracy": 0.61})
    """
    from keras_ssm import distribute

    payload = json_safe({**dict(result), "metadata": environment()})
    if not distribute.is_chief():
        return payload  # only process 0 of a multi-process run writes
    return write_json(path, payload)
