"""Transformer and Informer-style forecasting baselines (keras-hub layers).

- `TransformerForecaster`: a vanilla encoder (full self-attention, sine
  positions) with the same horizon head as `SSMForecaster`.
- `InformerForecaster`: Informer's encoder-decoder layout (Zhou et al.,
  2021) with self-attention distilling (Conv1D, BatchNorm, ELU, max-pool
  stride 2) between encoder layers and the generative decoder that reads
  the last `label_len` inputs followed by `horizon` placeholder zeros and
  predicts all steps in one pass. keras-hub has no ProbSparse attention,
  so the attention is full; that changes cost, not the model class.

`lipschitz_weight` adds `LipschitzRegularization` after the embeddings;
*Data Continuity Matters* (Qu et al., ICLR 2023) gives Transformers a
negative weight (rewarding a larger Lipschitz quantity of the embedded
sequence).
"""

import keras

from keras_ssm.models.forecaster import ForecasterBase
from keras_ssm.models.forecaster import check_forecast_sizes
from keras_ssm.models.forecaster import denormalized
from keras_ssm.models.forecaster import normalized_history
from keras_ssm.models.forecasting_layers import DecoderSeed
from keras_ssm.models.forecasting_layers import HorizonHead
from keras_ssm.models.preset_io import init_arguments
from keras_ssm.utils.deprecation import deprecated_arguments


def _keras_hub_layers():
    try:
        import keras_hub
    except ImportError as error:  # pragma: no cover
        raise ImportError(
            "The Transformer baselines need keras-hub: pip install keras-hub"
        ) from error
    return keras_hub.layers


def _embed(x, hidden_dim, name, lipschitz_weight):
    """Dense value embedding + sine positions (+ Lipschitz penalty)."""
    hub = _keras_hub_layers()
    x = keras.layers.Dense(hidden_dim, name=f"{name}_embedding")(x)
    x = x + hub.SinePositionEncoding(name=f"{name}_positions")(x)
    if lipschitz_weight:
        from keras_ssm.layers import LipschitzRegularization

        x = LipschitzRegularization(
            weight=lipschitz_weight, name=f"{name}_lipschitz"
        )(x)
    return x


def _encode(x, hidden_dim, num_layers, num_heads, dropout, distil=False):
    """`num_layers` Transformer encoder layers (GELU, feed-forward 4 x).

    With `distil`, Informer's distilling halves the length between them.
    """
    for index in range(num_layers):
        x = _keras_hub_layers().TransformerEncoder(
            intermediate_dim=4 * hidden_dim,
            num_heads=num_heads,
            dropout=dropout,
            activation="gelu",
            name=f"encoder_{index}",
        )(x)
        if distil and index < num_layers - 1:
            x = _distil(x, hidden_dim, f"distil_{index}")
    return x


class _BaselineForecaster(ForecasterBase):
    """Config plumbing of the baselines: every argument is a plain value.

    The input width was called `num_inputs` before keras-ssm 0.2.0; that
    name, in configs saved then included, still works with a warning.
    """

    def _store(self, values):
        for key in init_arguments(type(self)):
            setattr(self, key, values[key])


@keras.saving.register_keras_serializable(package="keras_ssm")
class TransformerForecaster(_BaselineForecaster):
    """A Transformer-encoder forecaster with the SSMs' horizon head.

    Args:
        input_size: input window length.
        horizon: forecast horizon.
        input_features: input series (deprecated name: `num_inputs`).
        target_columns: indices of the predicted series among the inputs.
        hidden_dim: model width (feed-forward 4 * hidden_dim).
        num_layers: encoder layers.
        num_heads: attention heads.
        dropout: dropout rate.
        normalization: "last", "revin" or "none" (see `SSMForecaster`).
        lipschitz_weight: weight of the Lipschitz penalty (0: none).
        **kwargs: `name`, `trainable`, `dtype` of `keras.Model`.

    Example:

    >>> TransformerForecaster(input_size=32, horizon=8).output_shape
    (None, 8, 1)
    """

    @deprecated_arguments(num_inputs="input_features")
    def __init__(
        self,
        input_size=96,
        horizon=24,
        input_features=1,
        target_columns=(0,),
        hidden_dim=64,
        num_layers=2,
        num_heads=4,
        dropout=0.1,
        normalization="last",
        lipschitz_weight=0.0,
        **kwargs,
    ):
        target_columns = check_forecast_sizes(
            input_size, horizon, target_columns, input_features
        )
        inputs, x, shift, scale = normalized_history(
            input_size, input_features, normalization
        )
        x = _embed(x, hidden_dim, "encoder", lipschitz_weight)
        x = _encode(x, hidden_dim, num_layers, num_heads, dropout)
        forecast = HorizonHead(horizon, len(target_columns), name="head")(x)
        outputs = denormalized(forecast, target_columns, shift, scale)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._store(locals())


def _distil(x, hidden_dim, name):
    """Informer's distilling: halves the length between encoder layers."""
    x = keras.layers.Conv1D(hidden_dim, 3, padding="same", name=f"{name}_conv")(
        x
    )
    x = keras.layers.BatchNormalization(name=f"{name}_norm")(x)
    x = keras.layers.Activation("elu", name=f"{name}_elu")(x)
    return keras.layers.MaxPooling1D(3, 2, padding="same", name=name)(x)


@keras.saving.register_keras_serializable(package="keras_ssm")
class InformerForecaster(_BaselineForecaster):
    """An Informer-style encoder-decoder forecaster (full attention).

    Args:
        input_size, horizon, input_features, target_columns, hidden_dim,
            num_heads, dropout, normalization, lipschitz_weight: as in
            `TransformerForecaster`.
        num_layers: encoder layers, with distilling between them.
        num_decoder_layers: decoder layers.
        label_len: known steps fed to the decoder (default input_size // 2,
            Informer's 48 for 96).
        **kwargs: `name`, `trainable`, `dtype` of `keras.Model`.

    Example:

    >>> InformerForecaster(input_size=32, horizon=8).output_shape
    (None, 8, 1)
    """

    @deprecated_arguments(num_inputs="input_features")
    def __init__(
        self,
        input_size=96,
        horizon=24,
        input_features=1,
        target_columns=(0,),
        hidden_dim=64,
        num_layers=2,
        num_decoder_layers=1,
        num_heads=4,
        label_len=None,
        dropout=0.1,
        normalization="last",
        lipschitz_weight=0.0,
        **kwargs,
    ):
        target_columns = check_forecast_sizes(
            input_size, horizon, target_columns, input_features
        )
        label_len = input_size // 2 if label_len is None else int(label_len)
        if not 1 <= label_len <= input_size:
            raise ValueError(
                f"`label_len` must be in [1, input_size={input_size}], got "
                f"{label_len}."
            )
        hub = _keras_hub_layers()
        inputs, z, shift, scale = normalized_history(
            input_size, input_features, normalization
        )
        x = _embed(z, hidden_dim, "encoder", lipschitz_weight)
        x = _encode(x, hidden_dim, num_layers, num_heads, dropout, distil=True)
        y = _embed(
            DecoderSeed(label_len, horizon, name="decoder_seed")(z),
            hidden_dim,
            "decoder",
            lipschitz_weight,
        )
        for index in range(num_decoder_layers):
            y = hub.TransformerDecoder(
                intermediate_dim=4 * hidden_dim,
                num_heads=num_heads,
                dropout=dropout,
                activation="gelu",
                name=f"decoder_{index}",
            )(y, x, use_causal_mask=True)
        y = keras.layers.Dense(len(target_columns), name="projection")(y)
        outputs = denormalized(y[:, -horizon:, :], target_columns, shift, scale)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._store(locals())
