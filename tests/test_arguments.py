"""Every constructor argument of every public layer is checked.

One table of bad values: each must raise a `ValueError` or `TypeError`
whose message names the argument (the 0.1.0 layers read "false" as True,
refused NumPy integers as sizes and accepted NaN or infinite scales). One
table of good values: NumPy scalars are accepted and stored as plain Python
values, so that `get_config` stays JSON-serialisable. Only constructors run.
"""

import json

import numpy as np
import pytest

from keras_ssm.layers import CES
from keras_ssm.layers import S4D
from keras_ssm.layers import ETSMLPBlock
from keras_ssm.layers import ETSMLPGate
from keras_ssm.layers import LipschitzRegularization
from keras_ssm.layers import Mamba2Block
from keras_ssm.layers import MambaBlock
from keras_ssm.layers import S4DBlock
from keras_ssm.layers import SelectiveSSM
from keras_ssm.regularizers import LipschitzRegularizer

LAYERS = {
    "S4D": S4D,
    "S4DBlock": S4DBlock,
    "CES": CES,
    "ETSMLPBlock": lambda **kw: ETSMLPBlock(**{"intermediate_dim": 8, **kw}),
    "ETSMLPGate": lambda **kw: ETSMLPGate(**{"intermediate_dim": 8, **kw}),
    "SelectiveSSM": SelectiveSSM,
    "MambaBlock": MambaBlock,
    "Mamba2Block": Mamba2Block,
    "LipschitzRegularization": LipschitzRegularization,
    "LipschitzRegularizer": LipschitzRegularizer,
}

T, V = TypeError, ValueError
NAN, INF = float("nan"), float("inf")

BAD = [
    # S4D
    ("S4D", {"d_state": 7}, V, "d_state"),
    ("S4D", {"d_state": 0}, V, "d_state"),
    ("S4D", {"d_state": 8.0}, T, "d_state"),
    ("S4D", {"d_state": True}, T, "d_state"),
    ("S4D", {"d_state": "8"}, T, "d_state"),
    ("S4D", {"dt_min": "0.01"}, T, "dt_min"),
    ("S4D", {"dt_min": -1.0}, V, "dt_min"),
    ("S4D", {"dt_max": None}, T, "dt_max"),
    ("S4D", {"dt_max": INF}, V, "dt_max"),
    ("S4D", {"dt_min": 0.1, "dt_max": 0.01}, V, "dt_min"),
    ("S4D", {"init": "hippo"}, V, "init"),
    ("S4D", {"init": None}, V, "init"),
    ("S4D", {"discretization": "euler"}, V, "discretization"),
    ("S4D", {"bidirectional": "false"}, T, "bidirectional"),
    ("S4D", {"bidirectional": 1}, T, "bidirectional"),
    ("S4D", {"freq_scale": INF}, V, "freq_scale"),
    ("S4D", {"freq_scale": 0.0}, V, "freq_scale"),
    ("S4D", {"freq_scale": "2"}, T, "freq_scale"),
    ("S4D", {"sobolev_order": NAN}, V, "sobolev_order"),
    ("S4D", {"sobolev_order": "x"}, T, "sobolev_order"),
    ("S4D", {"trainable_sobolev": "yes"}, T, "trainable_sobolev"),
    ("S4D", {"dt_scale": None}, T, "dt_scale"),
    ("S4D", {"dt_scale": -1.0}, V, "dt_scale"),
    ("S4D", {"dropout": None}, T, "dropout"),
    ("S4D", {"dropout": 1.0}, V, "dropout"),
    ("S4D", {"dropout": NAN}, V, "dropout"),
    ("S4D", {"C_initializer": "nope"}, V, "C_initializer"),
    ("S4D", {"D_initializer": 3}, V, "D_initializer"),
    ("S4D", {"C_regularizer": "nope"}, V, "C_regularizer"),
    ("S4D", {"D_regularizer": 1.5}, V, "D_regularizer"),
    # S4DBlock (its S4D arguments are checked by S4D)
    ("S4DBlock", {"d_state": 3}, V, "d_state"),
    ("S4DBlock", {"norm": "group"}, V, "norm"),
    ("S4DBlock", {"prenorm": "false"}, T, "prenorm"),
    ("S4DBlock", {"dropout": None}, T, "dropout"),
    ("S4DBlock", {"dropout": -0.1}, V, "dropout"),
    ("S4DBlock", {"activation": "nope"}, V, "activation"),
    ("S4DBlock", {"bidirectional": "no"}, T, "bidirectional"),
    ("S4DBlock", {"freq_scale": INF}, V, "freq_scale"),
    ("S4DBlock", {"dt_min": "0.01"}, T, "dt_min"),
    # CES
    ("CES", {"r_min": 0.0}, V, "r_min"),
    ("CES", {"r_min": "0.1"}, T, "r_min"),
    ("CES", {"r_max": 1.0}, V, "r_max"),
    ("CES", {"r_max": NAN}, V, "r_max"),
    ("CES", {"r_min": 0.5, "r_max": 0.4}, V, "r_min"),
    ("CES", {"max_phase": INF}, V, "max_phase"),
    ("CES", {"max_phase": -1.0}, V, "max_phase"),
    ("CES", {"max_phase": None}, T, "max_phase"),
    ("CES", {"init": "hippo"}, V, "init"),
    ("CES", {"stable_lambda": 1.5}, V, "stable_lambda"),
    ("CES", {"stable_lambda": "0.5"}, T, "stable_lambda"),
    ("CES", {"dt_min": "0.01"}, T, "dt_min"),
    ("CES", {"dt_max": INF}, V, "dt_max"),
    ("CES", {"dt_min": 0.1, "dt_max": 0.01}, V, "dt_min"),
    ("CES", {"max_lambda": 1.0}, V, "max_lambda"),
    ("CES", {"max_lambda": None}, T, "max_lambda"),
    ("CES", {"complex": "false"}, T, "complex"),
    ("CES", {"bidirectional": "false"}, T, "bidirectional"),
    ("CES", {"dropout": None}, T, "dropout"),
    ("CES", {"dropout": 1.0}, V, "dropout"),
    ("CES", {"dt_scale": 0.0}, V, "dt_scale"),
    ("CES", {"dt_scale": "1"}, T, "dt_scale"),
    # ETSMLPBlock / ETSMLPGate
    ("ETSMLPBlock", {"intermediate_dim": 0}, V, "intermediate_dim"),
    ("ETSMLPBlock", {"intermediate_dim": 8.0}, T, "intermediate_dim"),
    ("ETSMLPBlock", {"intermediate_dim": True}, T, "intermediate_dim"),
    (
        "ETSMLPBlock",
        # The deprecated name is renamed first (with a warning), then
        # checked under the current name; an explicit None is no value.
        {"intermediate_dim": None, "hidden_dim": True},
        T,
        "intermediate_dim",
    ),
    ("ETSMLPBlock", {"gated": "no"}, T, "gated"),
    ("ETSMLPBlock", {"norm": "group"}, V, "norm"),
    ("ETSMLPBlock", {"prenorm": "false"}, T, "prenorm"),
    ("ETSMLPBlock", {"dropout": None}, T, "dropout"),
    ("ETSMLPBlock", {"dropout": -0.1}, V, "dropout"),
    ("ETSMLPBlock", {"activation": 3}, V, "activation"),
    ("ETSMLPBlock", {"bidirectional": "false"}, T, "bidirectional"),
    ("ETSMLPBlock", {"r_max": 1.0}, V, "r_max"),
    ("ETSMLPBlock", {"complex": "false"}, T, "complex"),
    ("ETSMLPBlock", {"max_phase": INF}, V, "max_phase"),
    ("ETSMLPGate", {"gated": False}, V, "gated"),
    ("ETSMLPGate", {"gated": "false"}, T, "gated"),
    ("ETSMLPGate", {"intermediate_dim": -1}, V, "intermediate_dim"),
    ("ETSMLPGate", {"dropout": "0.1"}, T, "dropout"),
    # SelectiveSSM
    ("SelectiveSSM", {"d_state": 0}, V, "d_state"),
    ("SelectiveSSM", {"d_state": 4.0}, T, "d_state"),
    ("SelectiveSSM", {"dt_rank": 0}, V, "dt_rank"),
    ("SelectiveSSM", {"dt_rank": "full"}, T, "dt_rank"),
    ("SelectiveSSM", {"dt_rank": 1.5}, T, "dt_rank"),
    ("SelectiveSSM", {"dt_min": "0.01"}, T, "dt_min"),
    ("SelectiveSSM", {"dt_max": NAN}, V, "dt_max"),
    ("SelectiveSSM", {"dt_min": 0.1, "dt_max": 0.01}, V, "dt_min"),
    ("SelectiveSSM", {"dt_init_floor": 0.0}, V, "dt_init_floor"),
    ("SelectiveSSM", {"dt_init_floor": None}, T, "dt_init_floor"),
    ("SelectiveSSM", {"dt_scale": None}, T, "dt_scale"),
    ("SelectiveSSM", {"dt_scale": INF}, V, "dt_scale"),
    ("SelectiveSSM", {"scan_method": "parallel"}, V, "scan_method"),
    ("SelectiveSSM", {"chunk_size": 0}, V, "chunk_size"),
    ("SelectiveSSM", {"chunk_size": 8.0}, T, "chunk_size"),
    ("SelectiveSSM", {"kernel_initializer": "nope"}, V, "kernel_initializer"),
    ("SelectiveSSM", {"kernel_regularizer": "nope"}, V, "kernel_regularizer"),
    # MambaBlock (its SSM arguments are checked by SelectiveSSM)
    ("MambaBlock", {"d_state": 0}, V, "d_state"),
    ("MambaBlock", {"d_state": "16"}, T, "d_state"),
    ("MambaBlock", {"d_conv": 0}, V, "d_conv"),
    ("MambaBlock", {"expand": 1.5}, T, "expand"),
    ("MambaBlock", {"expand": 0}, V, "expand"),
    ("MambaBlock", {"intermediate_dim": 0}, V, "intermediate_dim"),
    ("MambaBlock", {"intermediate_dim": "64"}, T, "intermediate_dim"),
    ("MambaBlock", {"dt_rank": -2}, V, "dt_rank"),
    ("MambaBlock", {"norm": "group"}, V, "norm"),
    ("MambaBlock", {"prenorm": "false"}, T, "prenorm"),
    ("MambaBlock", {"bidirectional": "false"}, T, "bidirectional"),
    ("MambaBlock", {"dropout": None}, T, "dropout"),
    ("MambaBlock", {"dropout": 1.0}, V, "dropout"),
    ("MambaBlock", {"conv_bias": "false"}, T, "conv_bias"),
    ("MambaBlock", {"bias": "false"}, T, "bias"),
    ("MambaBlock", {"num_layers": 0}, V, "num_layers"),
    ("MambaBlock", {"num_layers": True}, T, "num_layers"),
    ("MambaBlock", {"scan_method": "cuda"}, V, "scan_method"),
    ("MambaBlock", {"dt_scale": None}, T, "dt_scale"),
    # Mamba2Block
    ("Mamba2Block", {"d_state": 0}, V, "d_state"),
    ("Mamba2Block", {"d_state": "16"}, T, "d_state"),
    ("Mamba2Block", {"d_conv": 2.0}, T, "d_conv"),
    ("Mamba2Block", {"expand": 1.5}, T, "expand"),
    ("Mamba2Block", {"expand": True}, T, "expand"),
    ("Mamba2Block", {"expand": 0}, V, "expand"),
    ("Mamba2Block", {"intermediate_dim": 0}, V, "intermediate_dim"),
    ("Mamba2Block", {"intermediate_dim": "64"}, T, "intermediate_dim"),
    ("Mamba2Block", {"headdim": -4}, V, "headdim"),
    ("Mamba2Block", {"headdim": "64"}, T, "headdim"),
    ("Mamba2Block", {"ngroups": None}, T, "ngroups"),
    ("Mamba2Block", {"chunk_size": 0}, V, "chunk_size"),
    ("Mamba2Block", {"chunk_size": 8.0}, T, "chunk_size"),
    ("Mamba2Block", {"A_init_range": 4.0}, T, "A_init_range"),
    ("Mamba2Block", {"A_init_range": (1.0, 2.0, 3.0)}, T, "A_init_range"),
    ("Mamba2Block", {"A_init_range": (0, 16)}, V, "A_init_range"),
    ("Mamba2Block", {"A_init_range": (1.0, INF)}, V, "A_init_range"),
    ("Mamba2Block", {"A_init_range": ("1", 16)}, T, "A_init_range"),
    ("Mamba2Block", {"A_init_range": (4, 2)}, V, "A_init_range"),
    ("Mamba2Block", {"dt_min": NAN}, V, "dt_min"),
    ("Mamba2Block", {"dt_min": "0.01"}, T, "dt_min"),
    ("Mamba2Block", {"dt_max": INF}, V, "dt_max"),
    ("Mamba2Block", {"dt_min": 0.2, "dt_max": 0.1}, V, "dt_min"),
    ("Mamba2Block", {"dt_init_floor": 0.0}, V, "dt_init_floor"),
    ("Mamba2Block", {"dt_init_floor": None}, T, "dt_init_floor"),
    ("Mamba2Block", {"conv_bias": "false"}, T, "conv_bias"),
    ("Mamba2Block", {"conv_bias": 1}, T, "conv_bias"),
    ("Mamba2Block", {"bias": "false"}, T, "bias"),
    ("Mamba2Block", {"norm": "group"}, V, "norm"),
    ("Mamba2Block", {"prenorm": "false"}, T, "prenorm"),
    ("Mamba2Block", {"bidirectional": "false"}, T, "bidirectional"),
    ("Mamba2Block", {"dropout": None}, T, "dropout"),
    ("Mamba2Block", {"dropout": 1.0}, V, "dropout"),
    ("Mamba2Block", {"dropout": NAN}, V, "dropout"),
    ("Mamba2Block", {"num_layers": 0}, V, "num_layers"),
    ("Mamba2Block", {"num_layers": True}, T, "num_layers"),
    ("Mamba2Block", {"headim": 4}, T, "headim"),
    # The Lipschitz penalty
    ("LipschitzRegularization", {"weight": NAN}, V, "weight"),
    ("LipschitzRegularization", {"weight": INF}, V, "weight"),
    ("LipschitzRegularization", {"weight": None}, T, "weight"),
    ("LipschitzRegularization", {"weight": "0.1"}, T, "weight"),
    ("LipschitzRegularization", {"normalize": "false"}, T, "normalize"),
    ("LipschitzRegularizer", {"weight": NAN}, V, "weight"),
    ("LipschitzRegularizer", {"weight": "big"}, T, "weight"),
    ("LipschitzRegularizer", {"normalize": "no"}, T, "normalize"),
]


@pytest.mark.parametrize(
    "layer, kwargs, error, argument",
    BAD,
    ids=[f"{row[0]}-{'-'.join(map(str, row[1].values()))}" for row in BAD],
)
def test_bad_argument_is_refused_by_name(layer, kwargs, error, argument):
    with pytest.raises(error, match=f"`{argument}\\b"):
        LAYERS[layer](**kwargs)


GOOD = [
    ("S4D", {"d_state": np.int64(8), "dt_min": np.float32(0.01)}),
    ("S4D", {"bidirectional": np.bool_(True), "freq_scale": np.float64(2)}),
    ("S4D", {"sobolev_order": -1, "dt_scale": 2, "dropout": np.float32(0.5)}),
    ("S4DBlock", {"d_state": np.int32(4), "prenorm": np.bool_(False)}),
    ("S4DBlock", {"dt_max": np.float32(0.2), "dropout": 0}),
    ("CES", {"r_min": np.float32(0.5), "r_max": 0.9, "max_phase": 0}),
    ("CES", {"complex": np.bool_(False), "dt_min": np.float16(0.01)}),
    ("ETSMLPBlock", {"intermediate_dim": np.int64(16), "r_min": 0.5}),
    ("ETSMLPGate", {"intermediate_dim": np.int32(4), "dropout": 0.1}),
    ("SelectiveSSM", {"d_state": np.int64(4), "dt_rank": np.int16(2)}),
    ("SelectiveSSM", {"chunk_size": np.int64(8), "dt_scale": np.float32(1)}),
    ("MambaBlock", {"d_state": np.int64(4), "expand": np.int32(3)}),
    ("MambaBlock", {"intermediate_dim": np.int64(24), "d_conv": 2}),
    ("MambaBlock", {"num_layers": np.int64(4), "bias": np.bool_(True)}),
    ("Mamba2Block", {"d_state": np.int64(4), "expand": np.int32(3)}),
    ("Mamba2Block", {"intermediate_dim": np.int64(24), "headdim": 8}),
    ("Mamba2Block", {"ngroups": np.int16(2), "chunk_size": np.int64(8)}),
    ("Mamba2Block", {"dt_min": np.float32(0.01), "dt_max": np.float64(0.2)}),
    ("Mamba2Block", {"A_init_range": [np.float32(1), np.int64(8)]}),
    ("Mamba2Block", {"num_layers": np.int64(4), "prenorm": np.bool_(False)}),
    ("Mamba2Block", {"dropout": np.float32(0.5), "bias": np.bool_(True)}),
    ("LipschitzRegularization", {"weight": np.float32(-0.5)}),
    ("LipschitzRegularization", {"weight": 1, "normalize": np.bool_(True)}),
    ("LipschitzRegularizer", {"weight": np.float64(0.1)}),
]


def _plain(value):
    """True if `value` holds only plain Python (JSON) types."""
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (bool, int, float, str)


@pytest.mark.parametrize(
    "layer, kwargs",
    GOOD,
    ids=[f"{row[0]}-{'-'.join(row[1])}" for row in GOOD],
)
def test_numpy_scalars_are_accepted_as_plain_values(layer, kwargs):
    instance = LAYERS[layer](**kwargs)
    config = instance.get_config()
    for key, value in kwargs.items():
        assert _plain(config[key]), (key, type(config[key]))
        assert config[key] == value
    json.dumps(config)  # no NumPy scalar left
