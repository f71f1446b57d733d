"""Initializers that reproduce PyTorch's defaults, as the references use."""

import math

import keras


def torch_linear_kernel():
    """PyTorch's `nn.Linear` / `nn.Conv1d` weight default: U(+-1/sqrt(fan_in)).

    PyTorch draws these weights with `kaiming_uniform_(a=sqrt(5))`, i.e.
    bound sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(fan_in); Keras's variance
    scaling with scale 1/3, fan-in mode and a uniform draw has the same
    bound sqrt(3 scale / fan_in). Keras computes fan_in of a Conv1D kernel
    (width, in / groups, out) as width * in / groups, as PyTorch does.
    """
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform"
    )


def torch_conv_bias(fan_in):
    """PyTorch's `nn.Conv1d` bias default: U(+-1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)
