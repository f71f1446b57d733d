"""Forecasting models: SSM backbones and Transformer/Informer baselines."""

from applications.forecasting.models.layers import HorizonHead
from applications.forecasting.models.layers import WindowDenormalization
from applications.forecasting.models.layers import WindowNormalization
from applications.forecasting.models.registry import MODELS
from applications.forecasting.models.registry import build_forecaster
from applications.forecasting.models.registry import is_transformer
from applications.forecasting.models.ssm import build_ssm_forecaster
from applications.forecasting.models.transformers import (
    build_informer_forecaster,
)
from applications.forecasting.models.transformers import (
    build_transformer_forecaster,
)
