"""Sequence layers: (batch, length, channels) in and out."""

from keras_ssm.layers.base import SequenceLayer
from keras_ssm.layers.ces import CES
from keras_ssm.layers.etsmlp_block import ETSMLPBlock
from keras_ssm.layers.etsmlp_block import ETSMLPGate
from keras_ssm.layers.lipschitz import LipschitzRegularization
from keras_ssm.layers.mamba2_block import Mamba2Block
from keras_ssm.layers.mamba_block import MambaBlock
from keras_ssm.layers.s4d import S4D
from keras_ssm.layers.s4d_block import S4DBlock
from keras_ssm.layers.selective_ssm import SelectiveSSM
