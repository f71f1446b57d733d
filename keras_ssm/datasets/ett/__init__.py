"""ETT (and other long-format CSVs): Informer splits, scaling and windows.

ETT data: Zhou et al., Informer (AAAI 2021), https://github.com/zhouhaoyi/
ETDataset, CC BY-ND 4.0 (used unmodified).
"""

from keras_ssm.datasets.ett.loading import FEATURE_MODES
from keras_ssm.datasets.ett.loading import ForecastingData
from keras_ssm.datasets.ett.loading import load_data
from keras_ssm.datasets.ett.loading import load_forecasting_data
from keras_ssm.datasets.ett.loading import read_series_csv
from keras_ssm.datasets.ett.loading import select_features
from keras_ssm.datasets.ett.sources import CHECKSUMS
from keras_ssm.datasets.ett.sources import dataset_kind
from keras_ssm.datasets.ett.sources import resolve_csv
from keras_ssm.datasets.ett.sources import sha256_of
from keras_ssm.datasets.ett.splits import Standardizer
from keras_ssm.datasets.ett.splits import split_borders
from keras_ssm.datasets.ett.windows import ForecastWindows
