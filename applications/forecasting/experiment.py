"""Trains and evaluates one forecaster on one horizon (the CLI's unit).

`Keras` must be importable with the right backend before this module is
used: the CLI selects the backend first (`applications.common.training`).
"""

import dataclasses
import os

import numpy as np

from applications.common import training
from applications.common.run_files import atomic_path
from applications.forecasting.metrics import evaluate_forecaster
from applications.forecasting.metrics import mae
from applications.forecasting.metrics import mse
from applications.forecasting.metrics import persistence_scores
from applications.forecasting.metrics import predict_windows
from applications.forecasting.plotting import plot_forecasts
from keras_ssm.datasets.ett import load_forecasting_data
from keras_ssm.models.blocks import BLOCK_TYPES
from keras_ssm.utils.deprecation import deprecated_arguments

# The SSM block types of the library (the Transformer has its own
# forecasting baselines).
SSM_BACKBONES = tuple(t for t in BLOCK_TYPES if t != "transformer")
TRANSFORMERS = ("transformer", "informer")
MODELS = SSM_BACKBONES + TRANSFORMERS


def is_transformer(name):
    """True for the attention baselines (their Lipschitz weight is -lambda)."""
    return name in TRANSFORMERS


HORIZONS = {
    "ett_hour": (24, 48, 168, 336, 720),
    "ett_minute": (24, 48, 96, 288, 672),
    "custom": (96, 192, 336, 720),
}


@dataclasses.dataclass
class ForecastConfig:
    """Everything one run depends on; stored in its result JSON.

    Attributes:
        data: data set name ("ETTh1", ...).
        features: "S", "M" or "MS".
        target: predicted column for "S"/"MS".
        horizon: forecast horizon h.
        input_size: input window length.
        model: "s4d", "etsmlp", "etsmlp_gate", "mamba", "transformer",
            "informer".
        hidden_dim, num_layers, d_state, dropout, normalization: model
            size (see `build_forecaster`). `hidden_dim` is the model width
            (its old name `d_model`, which the result JSON files of earlier
            runs hold, still works with a warning).
        lipschitz: lambda of the Lipschitz regulariser (0: off); SSMs get
            +lambda, Transformers -lambda.
        lipschitz_decay: eps of the schedule lambda exp(-eps t) of Data
            Continuity Matters, t counted in optimizer steps.
        learning_rate, weight_decay, ssm_learning_rate: optimizer
            (`keras_ssm.optimizers.ssm_adamw`).
        epochs, patience, batch_size, steps_per_epoch: training length;
            early stopping watches the validation MSE.
        seed: seed of weights and shuffling.
        data_dir, cache_dir, download: where the CSV comes from.
    """

    data: str = "ETTh1"
    features: str = "S"
    target: str = "OT"
    horizon: int = 24
    input_size: int = 336
    model: str = "s4d"
    hidden_dim: int = 64
    num_layers: int = 2
    d_state: int = 64
    dropout: float = 0.1
    normalization: str = "last"
    lipschitz: float = 0.0
    lipschitz_decay: float = 1e-3
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    ssm_learning_rate: float = None
    epochs: int = 10
    patience: int = 3
    batch_size: int = 32
    steps_per_epoch: int = None
    seed: int = 0
    data_dir: str = None
    cache_dir: str = None
    download: bool = True

    @property
    def lipschitz_weight(self):
        """The signed weight: +lambda for SSMs, -lambda for Transformers."""
        sign = -1.0 if is_transformer(self.model) else 1.0
        return sign * float(self.lipschitz)

    def run_name(self):
        lip = f"_lip{self.lipschitz:g}" if self.lipschitz else ""
        return f"{self.data}_{self.features}_{self.model}{lip}/h{self.horizon}"


ForecastConfig.__init__ = deprecated_arguments(d_model="hidden_dim")(
    ForecastConfig.__init__
)


def build_forecaster(config, data):
    """The `keras_ssm.models` forecaster of `config` for `data`'s columns."""
    from keras_ssm import models

    common = {
        "input_size": config.input_size,
        "horizon": config.horizon,
        "target_columns": data.target_columns,
        "normalization": config.normalization,
    }
    if is_transformer(config.model):
        baseline = (
            models.TransformerForecaster
            if config.model == "transformer"
            else models.InformerForecaster
        )
        return baseline(
            input_features=data.input_features,
            hidden_dim=config.hidden_dim,
            num_layers=config.num_layers,
            dropout=config.dropout,
            lipschitz_weight=config.lipschitz_weight,
            **common,
        )
    # Only the block types with a state size get `d_state` (ETSMLP has one
    # complex mode per channel).
    state = {}
    if "d_state" in BLOCK_TYPES.get(config.model, ((), ()))[1]:
        state["d_state"] = config.d_state
    backbone = models.SSMBackbone(
        config.model,
        num_layers=config.num_layers,
        hidden_dim=config.hidden_dim,
        input_features=data.input_features,
        dropout=config.dropout,
        lipschitz_weight=config.lipschitz_weight,
        **state,
    )
    return models.SSMForecaster(backbone, **common)


def build_and_compile(config, data):
    """The forecaster of `config`, compiled with MSE loss and MSE/MAE."""
    model = build_forecaster(config, data)
    model.compile_from_preset(
        {
            "learning_rate": config.learning_rate,
            "weight_decay": config.weight_decay,
            "ssm_learning_rate": config.ssm_learning_rate,
            "schedule": "constant",
            "epochs": config.epochs,
            "batch_size": config.batch_size,
        }
    )
    return model


def load_data(config):
    """The windows of `config`; a bad data argument is one `UsageError`.

    The loader's errors name its own arguments; this names the command
    line's (`--data`, `--target`, `--horizon`, `--input-size`, ...).
    """
    try:
        return load_forecasting_data(
            config.data,
            config.features,
            config.target,
            input_size=config.input_size,
            h=config.horizon,
            batch_size=config.batch_size,
            data_dir=config.data_dir,
            cache_dir=config.cache_dir,
            download=config.download,
            seed=config.seed,
        )
    except (ValueError, KeyError, OSError) as error:
        raise training.UsageError(
            f"cannot use --data {config.data} --features {config.features} "
            f"--target {config.target} --horizon {config.horizon} "
            f"--input-size {config.input_size}: "
            f"{training.one_line(error)}"
        ) from error


def run_forecast(
    config,
    output_dir,
    resume=False,
    data_parallel=False,
    num_devices=None,
    verbose=1,
    plot_windows=3,
):
    """Trains with early stopping, evaluates on test, writes JSON and PNG.

    The Lipschitz penalty is part of `loss`, so early stopping and the best
    checkpoint watch `val_mse` (the task metric alone).

    Args:
        config: a `ForecastConfig`.
        output_dir: the run directory (checkpoints, history.csv,
            result.json, forecast.png, and the trained model as a preset
            folder, `preset/`).
        resume: continue an interrupted run in `output_dir`.
        data_parallel, num_devices: `--data-parallel` (see
            `applications.common.distribute`).
        verbose: Keras fit verbosity (1: progress bars).
        plot_windows: number of test windows in the PNG (0: no plot).

    Returns:
        The result dict (also written to `<output_dir>/result.json`).
    """
    import keras

    paths = training.RunPaths(output_dir)
    if resume and paths.is_finished(config.epochs):
        training.say(
            f"{output_dir} holds a finished run (result.json); it is left "
            "untouched. Ask for more --epochs to continue it, or drop "
            "--resume to train it again."
        )
        return training.read_json(paths.result)
    keras.utils.set_random_seed(config.seed)
    data = load_data(config)
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_mse",
            patience=config.patience,
            restore_best_weights=True,
        )
    ]
    if config.lipschitz:
        from keras_ssm.callbacks import LipschitzSchedule

        callbacks.append(
            LipschitzSchedule(
                config.lipschitz_weight, decay=config.lipschitz_decay
            )
        )
    with training.data_parallel_scope(data_parallel, num_devices):
        model = build_and_compile(config, data)
        history, seconds = training.fit(
            model,
            data.train,
            validation_data=data.val,
            epochs=config.epochs,
            paths=paths,
            resume=resume,
            steps_per_epoch=config.steps_per_epoch,
            verbose=verbose,
            monitor="val_mse",
            mode="min",
            callbacks=callbacks,
        )
    val = evaluate_forecaster(model, data.val)
    inputs = data.test.arrays()[0]
    targets, forecasts = predict_windows(model, data.test)
    test = {"mse": mse(targets, forecasts), "mae": mae(targets, forecasts)}
    plot = None
    if plot_windows and training.is_chief():  # one writer per run
        plot = os.path.join(paths.output_dir, "forecast.png")
        picks = np.linspace(0, len(targets) - 1, plot_windows).astype(int)
        with atomic_path(plot) as partial:
            plot_forecasts(
                partial,
                inputs,
                targets,
                forecasts,
                windows=picks,
                title=f"{config.data} {config.features} {config.model} "
                f"h={config.horizon}: test MSE {test['mse']:.4f}",
            )
    # The trained model as a preset folder, with the training scaler, so
    # that `model.forecast(raw_history)` of the reloaded model is raw-scale.
    preset_dir = os.path.join(paths.output_dir, "preset")
    if training.is_chief():
        model.save_to_preset(preset_dir, scaler=data.scaler)
    persistence = persistence_scores(data.test, data.target_columns)
    epochs_run = len(history.get("loss", []))
    result = {
        "config": dataclasses.asdict(config),
        "lipschitz_weight": config.lipschitz_weight,
        "test_mse": test["mse"],
        "test_mae": test["mae"],
        "persistence_test_mse": persistence["mse"],
        "persistence_test_mae": persistence["mae"],
        "val_mse": val["mse"],
        "val_mae": val["mae"],
        "epochs_run": epochs_run,
        "stopped_early": epochs_run < config.epochs,
        "train_seconds": seconds,
        "parameters": model.count_params(),
        "windows": {
            "train": data.train.num_windows,
            "val": data.val.num_windows,
            "test": data.test.num_windows,
        },
        "borders": data.borders,
        "history": history,
        "plot": plot,
        "preset_folder": preset_dir,
    }
    training.write_result(paths.result, result)
    return result
