"""`SSMForecaster`: window normalisation, a backbone, the horizon head."""

import os

import keras
import numpy as np

from keras_ssm.models.forecasting_layers import HorizonHead
from keras_ssm.models.forecasting_layers import WindowDenormalization
from keras_ssm.models.forecasting_layers import WindowNormalization
from keras_ssm.models.task import PresetModel


def forecast_metrics():
    """MSE and MAE metrics named as the forecasting results report them."""
    return [
        keras.metrics.MeanSquaredError(name="mse"),
        keras.metrics.MeanAbsoluteError(name="mae"),
    ]


def check_forecast_sizes(input_size, horizon, target_columns, input_features):
    """Validates the sizes shared by every forecaster; the target columns."""
    for name, value in (("input_size", input_size), ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{name}` must be a positive integer, got {value!r}."
            )
    columns = [int(c) for c in target_columns]
    if not columns or any(not 0 <= c < input_features for c in columns):
        raise ValueError(
            "`target_columns` must be a non-empty list of input columns in "
            f"[0, {input_features}); got {list(target_columns)}."
        )
    return columns


def normalized_history(input_size, input_features, normalization):
    """The `history` input and its window normalisation.

    Returns:
        `(inputs, normalized, shift, scale)`; `denormalized` undoes the
        normalisation on a forecast.
    """
    inputs = keras.Input((input_size, input_features), name="history")
    normalized, shift, scale = WindowNormalization(
        normalization, name="normalize"
    )(inputs)
    return inputs, normalized, shift, scale


def denormalized(forecast, target_columns, shift, scale):
    """`forecast` on the scale of the history (the target columns')."""
    return WindowDenormalization(target_columns, name="denormalize")(
        forecast, shift, scale
    )


SCALER_FILE = "scaler.json"


def _check_scaler(scaler):
    if scaler is None:
        return None
    try:
        mean = np.asarray(scaler.mean, dtype=np.float64)
        std = np.asarray(scaler.std, dtype=np.float64)
    except (AttributeError, TypeError, ValueError):
        raise TypeError(
            "`scaler` must have per-column `mean` and `std` arrays (a "
            "keras_ssm.datasets.ett.Standardizer); got "
            f"{type(scaler).__name__}."
        ) from None
    if mean.ndim != 1 or mean.shape != std.shape:
        raise ValueError(
            "`scaler.mean` and `scaler.std` must be 1-D of the same length; "
            f"got shapes {mean.shape} and {std.shape}."
        )
    return scaler


class ForecasterBase(PresetModel):
    """Loss and metrics of every forecaster, its scaler and raw forecasts.

    A forecaster trains on standardised series. `scaler` (an
    `keras_ssm.datasets.ett.Standardizer`, or any object with per-column
    `mean` and `std` of the input series) is saved with `save_to_preset`
    and loaded back by `from_preset`, so that `forecast` works on the raw
    scale of the data.
    """

    scaler = None

    def _default_compile(self):
        return {"loss": "mse", "metrics": forecast_metrics()}

    def save_to_preset(self, folder, scaler=None):
        """Saves the model as a preset folder, with its scaler if any.

        Args:
            folder: the folder to write; replaced if it exists.
            scaler: the standardisation of the training data
                (default: `self.scaler`); saved as `assets/scaler.json`,
                and set as `self.scaler`.

        Returns:
            The folder's absolute path.

        Example:

        ```python
        (x, y), val, test, scaler = keras_ssm.datasets.ett.load_windows(...)
        model.fit(x, y)
        model.save_to_preset("etth1_forecaster", scaler=scaler)
        ```
        """
        if scaler is not None:
            self.scaler = _check_scaler(scaler)
        return super().save_to_preset(folder)

    def _preset_assets(self):
        if self.scaler is None:
            return {}
        return {
            SCALER_FILE: {
                "mean": np.asarray(self.scaler.mean, np.float64).tolist(),
                "std": np.asarray(self.scaler.std, np.float64).tolist(),
            }
        }

    def _load_preset_assets(self, folder):
        from keras_ssm.models.preset_io import ASSETS_DIR
        from keras_ssm.models.preset_io import read_json

        path = os.path.join(folder, ASSETS_DIR, SCALER_FILE)
        if os.path.isfile(path):
            from keras_ssm.datasets.ett.splits import Standardizer

            values = read_json(os.path.join(folder, ASSETS_DIR), SCALER_FILE)
            self.scaler = _check_scaler(
                Standardizer(values["mean"], values["std"])
            )

    def forecast(self, history, batch_size=None):
        """Forecasts on the raw scale: raw history in, raw forecasts out.

        With a `scaler`, the history is standardised, the model predicts
        and the forecasts of the target columns are mapped back; without
        one this is `predict`.

        Args:
            history: raw values, (batch, input_size, input series).
            batch_size: `predict`'s batch size.

        Returns:
            A float64 NumPy array (batch, horizon, targets).
        """
        history = np.asarray(history, dtype=np.float64)
        if self.scaler is None:
            return np.asarray(
                self.predict(history, batch_size=batch_size, verbose=0),
                np.float64,
            )
        mean = np.asarray(self.scaler.mean, np.float64)
        std = np.asarray(self.scaler.std, np.float64)
        if history.ndim != 3 or history.shape[-1] != mean.shape[0]:
            raise ValueError(
                "`history` must be (batch, input_size, "
                f"{mean.shape[0]}) raw values (the scaler's columns); got "
                f"shape {history.shape}."
            )
        scaled = ((history - mean) / std).astype("float32")
        forecast = self.predict(scaled, batch_size=batch_size, verbose=0)
        columns = list(self.target_columns)
        return np.asarray(forecast, np.float64) * std[columns] + mean[columns]


@keras.saving.register_keras_serializable(package="keras_ssm")
class SSMForecaster(ForecasterBase):
    """Forecasts `horizon` steps from `input_size` past steps.

        history -> WindowNormalization -> backbone -> HorizonHead
                -> WindowDenormalization

    Each input window is normalised by its own statistics ("last": minus
    its last value, as NLinear, Zeng et al., 2023; "revin": by its mean and
    std, Kim et al., 2022), the backbone (on values, `input_features`
    series) encodes it, a linear map along time and one along channels give
    (batch, horizon, targets), and the normalisation is undone on the
    target columns.

    Args:
        backbone: a `keras_ssm.models.SSMBackbone` on values.
        input_size: input window length.
        horizon: forecast horizon.
        target_columns: indices of the predicted series among the inputs.
        normalization: "last", "revin" or "none".
        **kwargs: `name`, `trainable`, `dtype` of `keras.Model`.

    Example:

    >>> from keras_ssm.models import SSMBackbone
    >>> backbone = SSMBackbone("s4d", num_layers=1, hidden_dim=8,
    ...                        input_features=1, d_state=4)
    >>> SSMForecaster(backbone, input_size=32, horizon=8).output_shape
    (None, 8, 1)
    """

    def __init__(
        self,
        backbone,
        input_size,
        horizon,
        target_columns=(0,),
        normalization="last",
        **kwargs,
    ):
        if backbone.takes_token_ids:
            raise ValueError(
                "SSMForecaster needs a backbone on values (`input_features`), "
                "not token ids."
            )
        if backbone.sequence_length not in (None, input_size):
            raise ValueError(
                f"The backbone's `sequence_length` "
                f"({backbone.sequence_length}) must be None or `input_size` "
                f"({input_size})."
            )
        columns = check_forecast_sizes(
            input_size, horizon, target_columns, backbone.input_features
        )
        inputs, x, shift, scale = normalized_history(
            input_size, backbone.input_features, normalization
        )
        x = backbone(x)
        forecast = HorizonHead(horizon, len(columns), name="head")(x)
        outputs = denormalized(forecast, columns, shift, scale)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone = backbone
        self.input_size = input_size
        self.horizon = horizon
        self.target_columns = columns
        self.normalization = normalization

    @classmethod
    def _link_overrides(cls, config, backbone_config, task_over, backbone_over):
        # A backbone fixed to the window length follows a new `input_size`.
        if (
            "input_size" in task_over
            and "sequence_length" not in backbone_over
            and backbone_config is not None
            and backbone_config.get("sequence_length") is not None
            and backbone_config.get("sequence_length") == config["input_size"]
        ):
            backbone_over["sequence_length"] = task_over["input_size"]
