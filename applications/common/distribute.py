"""Data parallelism in one process, over every local device.

Kept for the applications' imports; the code lives in
`keras_ssm.distribute.local` (one process) and `keras_ssm.distribute`
(several processes, every backend).
"""

from keras_ssm.distribute.local import TORCH_HELP
from keras_ssm.distribute.local import data_parallel
from keras_ssm.distribute.local import local_devices
from keras_ssm.distribute.local import simulate_host_devices

__all__ = [
    "TORCH_HELP",
    "data_parallel",
    "local_devices",
    "simulate_host_devices",
]
