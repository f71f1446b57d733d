"""Argument parsing and the horizon loop of the forecasting CLI."""

import argparse
import dataclasses
import os

from applications.common import training
from applications.common.arguments import add_renamed_option
from applications.forecasting.experiment import HORIZONS
from applications.forecasting.experiment import MODELS
from applications.forecasting.experiment import ForecastConfig
from applications.forecasting.experiment import run_forecast
from applications.forecasting.report import results_table
from keras_ssm.datasets.ett import FEATURE_MODES
from keras_ssm.datasets.ett import dataset_kind
from keras_ssm.models.forecasting_layers import NORMALIZATIONS


def make_parser():
    defaults = ForecastConfig()
    parser = argparse.ArgumentParser(
        prog="python -m applications.forecasting",
        description="Long-horizon forecasting on ETT with SSM and "
        "Transformer forecasters.",
    )
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        default=defaults.data,
        help="ETTh1, ETTh2, ETTm1, ETTm2, or a CSV stem.",
    )
    group.add_argument(
        "--features", default=defaults.features, choices=FEATURE_MODES
    )
    group.add_argument("--target", default=defaults.target)
    group.add_argument(
        "--data-dir",
        default=None,
        help="Directory with <data>.csv (else "
        "$KERAS_SSM_DATA, the cache, the download).",
    )
    group.add_argument("--cache-dir", default=None)
    group.add_argument("--no-download", action="store_true")
    group = parser.add_argument_group("task")
    group.add_argument(
        "--horizon", type=training.positive_int, default=defaults.horizon
    )
    group.add_argument(
        "--all-horizons",
        action="store_true",
        help="24/48/168/336/720 (ETTh) or 24/48/96/288/672 (ETTm).",
    )
    group.add_argument(
        "--input-size", type=training.positive_int, default=defaults.input_size
    )
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=defaults.model, choices=MODELS)
    add_renamed_option(
        group,
        "--hidden-dim",
        "--d-model",
        type=training.positive_int,
        default=defaults.hidden_dim,
        help="Model width.",
    )
    group.add_argument(
        "--num-layers", type=training.positive_int, default=defaults.num_layers
    )
    group.add_argument(
        "--d-state", type=training.positive_int, default=defaults.d_state
    )
    group.add_argument(
        "--dropout", type=training.rate, default=defaults.dropout
    )
    group.add_argument(
        "--normalization",
        default=defaults.normalization,
        choices=NORMALIZATIONS,
    )
    group.add_argument(
        "--lipschitz",
        type=training.nonnegative_float,
        default=0.0,
        help="lambda of the Lipschitz regulariser (+ for "
        "SSMs, - applied for Transformers); 0 disables it.",
    )
    group.add_argument(
        "--lipschitz-decay",
        type=training.nonnegative_float,
        default=defaults.lipschitz_decay,
        help="eps of lambda * exp(-eps * step).",
    )
    group = parser.add_argument_group("optimizer")
    group.add_argument(
        "--learning-rate",
        type=training.positive_float,
        default=defaults.learning_rate,
    )
    group.add_argument(
        "--weight-decay",
        type=training.nonnegative_float,
        default=defaults.weight_decay,
    )
    group.add_argument(
        "--ssm-learning-rate", type=training.positive_float, default=None
    )
    group.add_argument(
        "--patience",
        type=training.positive_int,
        default=defaults.patience,
        help="Early-stopping patience on validation MSE.",
    )
    group.add_argument(
        "--plot-windows", type=training.nonnegative_int, default=3
    )
    training.add_training_arguments(
        parser, epochs=defaults.epochs, batch_size=defaults.batch_size
    )
    return parser


def config_from_args(args, horizon):
    values = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(ForecastConfig)
        if hasattr(args, field.name)
    }
    values.update(horizon=horizon, download=not args.no_download)
    return ForecastConfig(**values)


def check_paths(args):
    """The directories of `args`, checked before any data work.

    Raises:
        UsageError: naming the argument of a directory that is a file,
            lies under a file or cannot be written, or a missing
            `--data-dir`.
    """
    root = training.check_output_dir(
        args.output_dir or os.path.join("runs", "forecasting")
    )
    if args.cache_dir is not None:
        training.check_output_dir(args.cache_dir, "--cache-dir")
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise training.UsageError(
            f"argument --data-dir: {args.data_dir!r} is not a directory."
        )
    return root


def main(argv=None):
    args = make_parser().parse_args(argv)
    root = check_paths(args)
    horizons = (
        HORIZONS[dataset_kind(args.data)]
        if args.all_horizons
        else (args.horizon,)
    )
    results = []
    for horizon in horizons:
        config = config_from_args(args, horizon)
        output_dir = os.path.join(root, config.run_name())
        training.say(f"=== {config.run_name()} -> {output_dir}", flush=True)
        result = run_forecast(
            config,
            output_dir,
            resume=args.resume,
            data_parallel=args.data_parallel,
            num_devices=args.num_devices,
            verbose=args.verbose,
            plot_windows=args.plot_windows,
        )
        training.say(
            f"h={horizon}: test MSE {result['test_mse']:.4f} "
            f"MAE {result['test_mae']:.4f} ({result['epochs_run']} epochs, "
            f"{training.format_seconds(result['train_seconds'])})",
            flush=True,
        )
        results.append(result)
    poster = args.data == "ETTh1" and args.features == "S"
    training.say()
    training.say(results_table(results, "test_mse", poster=poster))
    return 0
