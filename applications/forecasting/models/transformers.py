"""Transformer and Informer-style baselines built from keras-hub layers.

- "transformer": a vanilla encoder (full self-attention, sine positions)
  with the same horizon head as the SSM forecasters.
- "informer": Informer's encoder-decoder layout (Zhou et al., 2021) with
  self-attention distilling (Conv1D, BatchNorm, ELU, max-pool stride 2)
  between encoder layers and the generative decoder that reads the last
  `label_len` inputs followed by h placeholder zeros and predicts all h
  steps in one pass. keras-hub has no ProbSparse attention, so the
  attention is full; that changes cost, not the model class.

With `lipschitz` set, `LipschitzRegularization(-lipschitz)` follows the
embedding: the sign that Data Continuity Matters (Qu et al., ICLR 2023)
gives Transformers (a negative weight rewards a larger Lipschitz quantity
of the embedded sequence).
"""

import keras

from applications.forecasting.models.layers import DecoderSeed
from applications.forecasting.models.layers import HorizonHead
from applications.forecasting.models.layers import WindowDenormalization
from applications.forecasting.models.layers import WindowNormalization
from applications.forecasting.models.layers import lipschitz_layer


def _keras_hub_layers():
    try:
        import keras_hub
    except ImportError as error:  # pragma: no cover
        raise ImportError(
            "The Transformer baselines need keras-hub: pip install keras-hub"
        ) from error
    return keras_hub.layers


def _embed(x, d_model, name, lipschitz):
    """Dense value embedding + sine positions (+ Lipschitz, sign flipped)."""
    hub = _keras_hub_layers()
    x = keras.layers.Dense(d_model, name=f"{name}_embedding")(x)
    x = x + hub.SinePositionEncoding(name=f"{name}_positions")(x)
    if lipschitz:
        x = lipschitz_layer(-lipschitz, name=f"{name}_lipschitz")(x)
    return x


def _encoder_layer(d_model, num_heads, dropout, name):
    return _keras_hub_layers().TransformerEncoder(
        intermediate_dim=4 * d_model,
        num_heads=num_heads,
        dropout=dropout,
        activation="gelu",
        name=name,
    )


def build_transformer_forecaster(
    input_size=96,
    h=24,
    num_inputs=1,
    target_columns=(0,),
    d_model=64,
    num_layers=2,
    num_heads=4,
    dropout=0.1,
    normalization="last",
    lipschitz=0.0,
):
    """A Transformer-encoder forecaster with the SSMs' horizon head.

    Args:
        input_size, h, num_inputs, target_columns, d_model, num_layers,
            dropout, normalization: as in `build_ssm_forecaster`.
        num_heads: attention heads.
        lipschitz: the regulariser gets weight -lipschitz (see module doc).

    Example:

    >>> model = build_transformer_forecaster(input_size=96, h=24)
    """
    inputs = keras.Input((input_size, num_inputs), name="history")
    x, shift, scale = WindowNormalization(normalization, name="normalize")(
        inputs
    )
    x = _embed(x, d_model, "encoder", lipschitz)
    for index in range(num_layers):
        x = _encoder_layer(d_model, num_heads, dropout, f"encoder_{index}")(x)
    forecast = HorizonHead(h, len(target_columns), name="head")(x)
    outputs = WindowDenormalization(target_columns, name="denormalize")(
        forecast, shift, scale
    )
    return keras.Model(inputs, outputs, name="transformer_forecaster")


def _distil(x, d_model, name):
    """Informer's distilling: halves the length between encoder layers."""
    x = keras.layers.Conv1D(d_model, 3, padding="same", name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_norm")(x)
    x = keras.layers.Activation("elu", name=f"{name}_elu")(x)
    return keras.layers.MaxPooling1D(3, 2, padding="same", name=name)(x)


def build_informer_forecaster(
    input_size=96,
    h=24,
    num_inputs=1,
    target_columns=(0,),
    d_model=64,
    num_layers=2,
    num_decoder_layers=1,
    num_heads=4,
    label_len=None,
    dropout=0.1,
    normalization="last",
    lipschitz=0.0,
):
    """An Informer-style encoder-decoder forecaster (full attention).

    Args:
        input_size, h, num_inputs, target_columns, d_model, dropout,
            normalization: as in `build_ssm_forecaster`.
        num_layers: encoder layers, with distilling between them.
        num_decoder_layers: decoder layers.
        num_heads: attention heads.
        label_len: known steps fed to the decoder (default input_size // 2,
            Informer's 48 for 96).
        lipschitz: weight -lipschitz on both embeddings (see module doc).

    Example:

    >>> model = build_informer_forecaster(input_size=96, h=24)
    """
    label_len = input_size // 2 if label_len is None else int(label_len)
    if not 1 <= label_len <= input_size:
        raise ValueError(
            f"`label_len` must be in [1, input_size={input_size}], got "
            f"{label_len}."
        )
    hub = _keras_hub_layers()
    inputs = keras.Input((input_size, num_inputs), name="history")
    z, shift, scale = WindowNormalization(normalization, name="normalize")(
        inputs
    )
    x = _embed(z, d_model, "encoder", lipschitz)
    for index in range(num_layers):
        x = _encoder_layer(d_model, num_heads, dropout, f"encoder_{index}")(x)
        if index < num_layers - 1:
            x = _distil(x, d_model, f"distil_{index}")
    y = _embed(
        DecoderSeed(label_len, h, name="decoder_seed")(z),
        d_model,
        "decoder",
        lipschitz,
    )
    for index in range(num_decoder_layers):
        y = hub.TransformerDecoder(
            intermediate_dim=4 * d_model,
            num_heads=num_heads,
            dropout=dropout,
            activation="gelu",
            name=f"decoder_{index}",
        )(y, x, use_causal_mask=True)
    y = keras.layers.Dense(len(target_columns), name="projection")(y)
    forecast = y[:, -h:, :]
    outputs = WindowDenormalization(target_columns, name="denormalize")(
        forecast, shift, scale
    )
    return keras.Model(inputs, outputs, name="informer_forecaster")
