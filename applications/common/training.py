"""The application toolkit in one namespace, for the command lines.

Each piece lives in a module with one job:

- `console`: hides TensorFlow's start-up notices, prints in process 0 only
  (`say`), formats durations.
- `arguments`: argparse types and the shared options
  (`add_training_arguments`).
- `backend`: `select_backend(argv)` sets `KERAS_BACKEND` before Keras is
  imported; call it at the very top of `__main__`.
- `errors`: `run_cli(main)`: every error is one line, `--debug` shows the
  traceback.
- `run_files`: `RunPaths`, `check_output_dir`, atomic writes.
- `checkpoints`: checkpoints, resume state, history and epoch time.
- `fitting`: `fit`, resumable, with those callbacks.
- `parallel`: `data_parallel_scope` for `--data-parallel`.
- `results`: `write_result`, `environment`, `json_safe`.
- `checks`: `check_labels` (labels against the number of classes).

Example:

>>> from applications.common import training
>>> training.select_backend()  # before `import keras`
>>> import keras
>>> parser = argparse.ArgumentParser()
>>> training.add_training_arguments(parser)
>>> args = parser.parse_args()
>>> paths = training.RunPaths(training.check_output_dir(args.output_dir))
>>> with training.data_parallel_scope(args.data_parallel):
...     model = build_model()
...     model.compile(...)
...     history, seconds = training.fit(
...         model, train, validation_data=val, epochs=args.epochs,
...         paths=paths, resume=args.resume)
>>> training.write_result(paths.result, {"test_accuracy": 0.9})
"""

from applications.common.arguments import BACKENDS
from applications.common.arguments import add_training_arguments
from applications.common.arguments import finite_float
from applications.common.arguments import nonnegative_float
from applications.common.arguments import nonnegative_int
from applications.common.arguments import positive_float
from applications.common.arguments import positive_int
from applications.common.arguments import rate
from applications.common.backend import select_backend
from applications.common.checks import check_labels
from applications.common.console import format_seconds
from applications.common.console import import_keras_quietly
from applications.common.console import is_chief
from applications.common.console import quiet_tensorflow
from applications.common.console import say
from applications.common.errors import CorruptedFileError
from applications.common.errors import TrainingDivergedError
from applications.common.errors import UsageError
from applications.common.errors import exit_on_divergence
from applications.common.errors import one_line
from applications.common.errors import run_cli
from applications.common.fitting import fit
from applications.common.parallel import data_parallel_scope
from applications.common.results import environment
from applications.common.results import json_safe
from applications.common.results import read_json
from applications.common.results import write_result
from applications.common.run_files import RunPaths
from applications.common.run_files import check_output_dir

__all__ = [
    "BACKENDS",
    "CorruptedFileError",
    "RunPaths",
    "TrainingDivergedError",
    "UsageError",
    "add_training_arguments",
    "check_labels",
    "check_output_dir",
    "data_parallel_scope",
    "environment",
    "exit_on_divergence",
    "finite_float",
    "fit",
    "format_seconds",
    "import_keras_quietly",
    "is_chief",
    "json_safe",
    "nonnegative_float",
    "nonnegative_int",
    "one_line",
    "positive_float",
    "positive_int",
    "quiet_tensorflow",
    "rate",
    "read_json",
    "run_cli",
    "say",
    "select_backend",
    "write_result",
]
