"""Long-horizon forecasting on ETT (Informer protocol) with SSM backbones.

`python -m applications.forecasting --help` for the command line. ETT data:
Zhou et al., "Informer", AAAI 2021, https://github.com/zhouhaoyi/ETDataset,
CC BY-ND 4.0.
"""
