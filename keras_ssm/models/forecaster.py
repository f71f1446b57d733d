"""`SSMForecaster`: window normalisation, a backbone, the horizon head."""

import keras

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


def check_forecast_sizes(input_size, horizon, target_columns, num_inputs):
    """Validates the sizes shared by every forecaster."""
    for name, value in (("input_size", input_size), ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{name}` must be a positive integer, got {value!r}."
            )
    columns = [int(c) for c in target_columns]
    if not columns or any(not 0 <= c < num_inputs for c in columns):
        raise ValueError(
            "`target_columns` must be a non-empty list of input columns in "
            f"[0, {num_inputs}); got {list(target_columns)}."
        )
    return columns


class ForecasterBase(PresetModel):
    """Loss and metrics of every forecaster: MSE, with MSE and MAE."""

    def _default_compile(self):
        return {"loss": "mse", "metrics": forecast_metrics()}


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
        num_inputs = backbone.input_features
        columns = check_forecast_sizes(
            input_size, horizon, target_columns, num_inputs
        )
        inputs = keras.Input((input_size, num_inputs), name="history")
        normalize = WindowNormalization(normalization, name="normalize")
        x, shift, scale = normalize(inputs)
        x = backbone(x)
        forecast = HorizonHead(horizon, len(columns), name="head")(x)
        outputs = WindowDenormalization(columns, name="denormalize")(
            forecast, shift, scale
        )
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone = backbone
        self.input_size = input_size
        self.horizon = horizon
        self.target_columns = columns
        self.normalization = normalization

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "input_size": self.input_size,
            "horizon": self.horizon,
            "target_columns": list(self.target_columns),
            "normalization": self.normalization,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["backbone"], dict):
            config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)
