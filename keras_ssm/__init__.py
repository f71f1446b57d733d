"""keras-ssm: state space sequence models for Keras 3."""

from keras_ssm import analysis
from keras_ssm import callbacks
from keras_ssm import datasets
from keras_ssm import layers
from keras_ssm import models
from keras_ssm import ops
from keras_ssm import optimizers
from keras_ssm import regularizers
from keras_ssm import schedules

__version__ = "0.2.0"
