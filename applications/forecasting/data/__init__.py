"""Forecasting data: sources, Informer splits, scaling and windows.

ETT data: Zhou et al., Informer (AAAI 2021), https://github.com/zhouhaoyi/
ETDataset, CC BY-ND 4.0 (used unmodified).
"""

from applications.forecasting.data.loading import FEATURE_MODES
from applications.forecasting.data.loading import ForecastingData
from applications.forecasting.data.loading import load_forecasting_data
from applications.forecasting.data.loading import read_series_csv
from applications.forecasting.data.loading import select_features
from applications.forecasting.data.sources import CHECKSUMS
from applications.forecasting.data.sources import dataset_kind
from applications.forecasting.data.sources import resolve_csv
from applications.forecasting.data.sources import sha256_of
from applications.forecasting.data.splits import Standardizer
from applications.forecasting.data.splits import split_borders
from applications.forecasting.data.windows import ForecastWindows
