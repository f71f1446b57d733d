"""Sequence layers: (batch, length, channels) in and out.

- Mixers, one per module: `S4D`, `CES`, `SelectiveSSM` (Mamba) and `SSD`
  (Mamba-2).
- Residual blocks, each a `ResidualBlock` around one mixer: `S4DBlock`,
  `ETSMLPBlock` / `ETSMLPGate`, `MambaBlock`, `Mamba2Block`.
- `LipschitzRegularization`, and `SequenceLayer`, the base of them all.
"""

from keras_ssm.layers.base import SequenceLayer
from keras_ssm.layers.ces import CES
from keras_ssm.layers.etsmlp_block import ETSMLPBlock
from keras_ssm.layers.etsmlp_block import ETSMLPGate
from keras_ssm.layers.lipschitz import LipschitzRegularization
from keras_ssm.layers.mamba2_block import Mamba2Block
from keras_ssm.layers.mamba_block import MambaBlock
from keras_ssm.layers.residual import ResidualBlock
from keras_ssm.layers.s4d import S4D
from keras_ssm.layers.s4d_block import S4DBlock
from keras_ssm.layers.selective_ssm import SelectiveSSM
from keras_ssm.layers.ssd import SSD
