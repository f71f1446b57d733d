"""One entry point that builds any forecaster by name."""

from applications.forecasting.models.ssm import SSM_BACKBONES
from applications.forecasting.models.ssm import build_ssm_forecaster
from applications.forecasting.models.transformers import (
    build_informer_forecaster,
)
from applications.forecasting.models.transformers import (
    build_transformer_forecaster,
)

TRANSFORMERS = ("transformer", "informer")
MODELS = SSM_BACKBONES + TRANSFORMERS


def is_transformer(name):
    """True for the attention baselines (their Lipschitz weight is -lambda)."""
    return name in TRANSFORMERS


def build_forecaster(name, **kwargs):
    """Builds forecaster `name` ("s4d", "etsmlp", "etsmlp_gate", "mamba",
    "transformer", "informer").

    Args:
        name: the model.
        **kwargs: arguments of `build_ssm_forecaster` or of the baseline
            builders (`input_size`, `h`, `num_inputs`, `target_columns`,
            `d_model`, `num_layers`, `dropout`, `normalization`,
            `lipschitz`, ...). `lipschitz` is lambda >= 0: SSMs get
            weight +lambda, the attention baselines -lambda (the signs of
            Data Continuity Matters). SSM-only arguments (`d_state`, block
            keyword arguments) are dropped for the baselines.

    Example:

    >>> model = build_forecaster("s4d", input_size=96, h=24, lipschitz=0.01)
    """
    if kwargs.get("lipschitz", 0.0) < 0:
        raise ValueError(
            "`lipschitz` is lambda >= 0 (the sign follows the model); got "
            f"{kwargs['lipschitz']}."
        )
    if name in SSM_BACKBONES:
        return build_ssm_forecaster(name, **kwargs)
    kwargs.pop("d_state", None)
    if name == "transformer":
        return build_transformer_forecaster(**kwargs)
    if name == "informer":
        return build_informer_forecaster(**kwargs)
    raise ValueError(f"`model` must be one of {MODELS}, got {name!r}.")
