"""SSM forecasters: input projection, N residual SSM blocks, horizon head."""

import keras

from applications.forecasting.models.layers import HorizonHead
from applications.forecasting.models.layers import WindowDenormalization
from applications.forecasting.models.layers import WindowNormalization
from applications.forecasting.models.layers import lipschitz_layer

SSM_BACKBONES = ("s4d", "etsmlp", "etsmlp_gate", "mamba")


def ssm_block(backbone, index, d_model, d_state, dropout, **kwargs):
    """One residual block of the chosen backbone (imported lazily).

    ETSMLP and Mamba come from other modules of keras_ssm that may be
    missing in a given build; the error then names the block. ETSMLP has no
    `d_state` (its CES state is one complex mode per channel); its MLP width
    defaults to 2 * d_model.
    """
    import keras_ssm.layers as ssm_layers

    name = f"{backbone}_block_{index}"
    if backbone == "s4d":
        return ssm_layers.S4DBlock(
            d_state=d_state, dropout=dropout, name=name, **kwargs
        )
    class_name = {
        "etsmlp": "ETSMLPBlock",
        "etsmlp_gate": "ETSMLPGate",
        "mamba": "MambaBlock",
    }.get(backbone)
    if class_name is None:
        raise ValueError(
            f"`backbone` must be one of {SSM_BACKBONES}, got {backbone!r}."
        )
    block = getattr(ssm_layers, class_name, None)
    if block is None:
        raise ImportError(
            f"keras_ssm.layers.{class_name} is not available in this build "
            f"of keras_ssm; choose another backbone than {backbone!r}."
        )
    if backbone == "mamba":
        return block(d_state=d_state, dropout=dropout, name=name, **kwargs)
    kwargs.setdefault("intermediate_dim", 2 * d_model)
    return block(dropout=dropout, name=name, **kwargs)


def build_ssm_forecaster(
    backbone="s4d",
    input_size=96,
    h=24,
    num_inputs=1,
    target_columns=(0,),
    d_model=64,
    num_layers=2,
    d_state=64,
    dropout=0.1,
    normalization="last",
    lipschitz=0.0,
    **block_kwargs,
):
    """An SSM forecaster: (batch, input_size, inputs) -> (batch, h, targets).

    x -> WindowNormalization -> Dense(d_model) (the embedding) ->
    [LipschitzRegularization(+lipschitz)] -> num_layers SSM blocks ->
    HorizonHead -> WindowDenormalization.

    Args:
        backbone: "s4d" (S4DBlock), "etsmlp" (ETSMLPBlock), "etsmlp_gate"
            (ETSMLPGate) or "mamba" (MambaBlock).
        input_size: input window length.
        h: forecast horizon.
        num_inputs: input series (1 for "S", all columns for "M"/"MS").
        target_columns: indices of the predicted series among the inputs.
        d_model: width of the blocks.
        num_layers: number of blocks.
        d_state: state size (S4D, Mamba; ignored by ETSMLP).
        dropout: dropout rate inside the blocks.
        normalization: "last", "revin" or "none" (see
            `WindowNormalization`).
        lipschitz: weight of the Lipschitz penalty on the embedding's
            output (positive smooths SSM inputs; 0 disables it).
        **block_kwargs: passed to every block (e.g. `bidirectional`).

    Example:

    >>> model = build_ssm_forecaster("s4d", input_size=96, h=24)
    >>> model.compile(optimizer="adam", loss="mse")
    """
    if num_layers < 1 or d_model < 1:
        raise ValueError(
            "`num_layers` and `d_model` must be >= 1; got "
            f"{num_layers}, {d_model}."
        )
    inputs = keras.Input((input_size, num_inputs), name="history")
    x, shift, scale = WindowNormalization(normalization, name="normalize")(
        inputs
    )
    x = keras.layers.Dense(d_model, name="embedding")(x)
    if lipschitz:
        x = lipschitz_layer(lipschitz)(x)
    for index in range(num_layers):
        block = ssm_block(
            backbone, index, d_model, d_state, dropout, **block_kwargs
        )
        x = block(x)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    forecast = HorizonHead(h, len(target_columns), name="head")(x)
    outputs = WindowDenormalization(target_columns, name="denormalize")(
        forecast, shift, scale
    )
    return keras.Model(inputs, outputs, name=f"{backbone}_forecaster")
