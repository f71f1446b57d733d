"""`SSMBackbone`: embedding, a stack of residual blocks, final norm."""

import keras

from keras_ssm.models.blocks import BLOCK_TYPES
from keras_ssm.models.blocks import make_block
from keras_ssm.models.config import ArgumentConfig
from keras_ssm.models.preset_io import PresetMixin

# Block arguments of the backbone (None: the block's own default).
BLOCK_ARGUMENTS = (
    "intermediate_dim",
    "d_state",
    "d_conv",
    "expand",
    "num_heads",
    "norm",
    "prenorm",
    "dropout",
    "bidirectional",
)


def _positive_int(name, value, optional=False):
    if optional and value is None:
        return None
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"`{name}` must be a positive integer, got {value!r}.")
    if int(value) < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


@keras.saving.register_keras_serializable(package="keras_ssm")
class SSMBackbone(ArgumentConfig, PresetMixin, keras.Model):
    """A stack of residual sequence blocks: (batch, length) -> features.

        token ids -> Embedding      \\
                                     -> [LipschitzRegularization]
        values    -> Dense (linear) /    -> num_layers x block
                                         -> LayerNormalization

    A Functional model, as keras-hub backbones are. From token ids (give
    `vocabulary_size`; steps equal to `padding_id` are masked through every
    block) or from values of shape (batch, length, input_features) (give
    `input_features`), to features of shape (batch, length, hidden_dim).

    Block types (`block_type`; see `keras_ssm.models.blocks.BLOCK_TYPES`):

    - `"s4d"`: `keras_ssm.layers.S4DBlock`;
    - `"etsmlp"` / `"etsmlp_gate"`: `keras_ssm.layers.ETSMLPBlock`, plain or
      gated (ETSMLP-Gate);
    - `"mamba"`: `keras_ssm.layers.MambaBlock`;
    - `"mamba2"`: `keras_ssm.layers.Mamba2Block` (`headdim`, `ngroups`,
      `chunk_size` through `block_kwargs`);
    - `"transformer"`: keras-hub's `TransformerEncoder` (pre-norm, GELU),
      with a learned `PositionEmbedding` added to the embedding (needs
      `sequence_length`).

    Args:
        block_type: the block of the stack (see above).
        num_layers: number of blocks.
        hidden_dim: model width (the names of keras-ssm are listed in the
            README's "Vocabulary").
        vocabulary_size: token vocabulary size (padding included), for
            token-id inputs.
        input_features: features per step, for value inputs (the input
            width).
        padding_id: the token id of padding (token inputs).
        sequence_length: input length; None accepts any length (the
            Transformer needs it for its position embedding).
        intermediate_dim: inner width of the ETSMLP MLP, of the Mamba
            blocks or of the Transformer's feed-forward (default
            2 * hidden_dim).
        d_state: state size (S4D, Mamba, Mamba-2).
        d_conv: the Mamba blocks' depthwise convolution width.
        expand: the Mamba blocks' inner width ratio.
        num_heads: Transformer attention heads (default 4).
        norm: "layer", "batch" or "rms" inside the blocks.
        prenorm: norm before the mixer (True) or after the residual.
        dropout: dropout rate inside the blocks.
        bidirectional: run the sequence mixer in both directions.
        block_kwargs: dict of further arguments of every block's layer
            (e.g. CES rings, S4D `dt_min`).
        lipschitz_weight: weight of `LipschitzRegularization` after the
            embedding (the penalty of *Data Continuity Matters*, Qu et al.,
            ICLR 2023); 0 or None leaves the layer out.
        lipschitz_normalize: the regulariser's `normalize` option.
        **kwargs: `name`, `trainable`, `dtype` of `keras.Model`.

    Arguments left at None take the block's own default; an argument that
    the block type does not use raises a ValueError.

    `SSMBackbone.from_preset(preset)` builds the backbone of a registry
    preset (untrained) or loads the trained backbone of a preset folder,
    a task's included; `save_to_preset(folder)` writes one.

    Example:

    >>> backbone = SSMBackbone("s4d", num_layers=2, hidden_dim=16,
    ...                        vocabulary_size=20, d_state=8)
    >>> backbone.output_shape
    (None, None, 16)
    """

    def __init__(
        self,
        block_type="s4d",
        num_layers=2,
        hidden_dim=64,
        vocabulary_size=None,
        input_features=None,
        padding_id=0,
        sequence_length=None,
        intermediate_dim=None,
        d_state=None,
        d_conv=None,
        expand=None,
        num_heads=None,
        norm=None,
        prenorm=None,
        dropout=None,
        bidirectional=None,
        block_kwargs=None,
        lipschitz_weight=0.0,
        lipschitz_normalize=False,
        **kwargs,
    ):
        if block_type not in BLOCK_TYPES:
            raise ValueError(
                f"`block_type` must be one of {tuple(BLOCK_TYPES)}; got "
                f"{block_type!r}."
            )
        num_layers = _positive_int("num_layers", num_layers)
        hidden_dim = _positive_int("hidden_dim", hidden_dim)
        vocabulary_size = _positive_int(
            "vocabulary_size", vocabulary_size, optional=True
        )
        input_features = _positive_int(
            "input_features", input_features, optional=True
        )
        sequence_length = _positive_int(
            "sequence_length", sequence_length, optional=True
        )
        if (vocabulary_size is None) == (input_features is None):
            raise ValueError(
                "Give exactly one of `vocabulary_size` (token-id inputs) and "
                "`input_features` (value inputs); got "
                f"vocabulary_size={vocabulary_size}, "
                f"input_features={input_features}."
            )
        if block_type == "transformer" and sequence_length is None:
            raise ValueError(
                "The 'transformer' block type needs `sequence_length` (its "
                "position embedding has one row per step)."
            )
        given = {
            "intermediate_dim": intermediate_dim,
            "d_state": d_state,
            "d_conv": d_conv,
            "expand": expand,
            "num_heads": num_heads,
            "norm": norm,
            "prenorm": prenorm,
            "dropout": dropout,
            "bidirectional": bidirectional,
        }
        settings = {k: v for k, v in given.items() if v is not None}
        unused = sorted(set(settings) - set(BLOCK_TYPES[block_type].arguments))
        if unused:
            raise ValueError(
                f"The {block_type!r} block type does not use {unused}; it "
                f"understands {BLOCK_TYPES[block_type].arguments}."
            )
        unknown = sorted(set(kwargs) - {"name", "trainable", "dtype"})
        if unknown:
            raise TypeError(
                f"SSMBackbone got unknown argument(s) {unknown}; it takes "
                "block_type, num_layers, hidden_dim, vocabulary_size, "
                "input_features, padding_id, sequence_length, "
                f"{', '.join(BLOCK_ARGUMENTS)}, block_kwargs, "
                "lipschitz_weight, lipschitz_normalize, name, trainable, dtype."
            )
        block_kwargs = dict(block_kwargs or {})
        if lipschitz_weight is None:
            lipschitz_weight = 0.0
        try:
            lipschitz_weight = float(lipschitz_weight)
        except (TypeError, ValueError):
            raise TypeError(
                f"`lipschitz_weight` must be a float, got {lipschitz_weight!r}."
            ) from None
        if lipschitz_weight != lipschitz_weight:
            raise ValueError("`lipschitz_weight` must not be NaN.")

        # === Functional model ===
        if vocabulary_size is not None:
            inputs = keras.Input(
                (sequence_length,), dtype="int32", name="token_ids"
            )
            mask = keras.ops.not_equal(inputs, padding_id)
            x = keras.layers.Embedding(
                vocabulary_size, hidden_dim, name="embedding"
            )(inputs)
        else:
            inputs = keras.Input(
                (sequence_length, input_features), name="values"
            )
            mask = None
            x = keras.layers.Dense(hidden_dim, name="embedding")(inputs)
        if block_type == "transformer":
            from keras_ssm.models.blocks import _keras_hub

            positions = _keras_hub().layers.PositionEmbedding(
                sequence_length, name="position_embedding"
            )(x)
            x = keras.layers.Add(name="add_positions")([x, positions])
        if lipschitz_weight:
            from keras_ssm.layers import LipschitzRegularization

            x = LipschitzRegularization(
                weight=lipschitz_weight,
                normalize=bool(lipschitz_normalize),
                name="lipschitz",
            )(x, mask=mask)
        for index in range(num_layers):
            block = make_block(
                block_type,
                {**settings, **block_kwargs},
                hidden_dim,
                num_layers,
                name=f"block_{index}",
            )
            if block_type == "transformer":
                x = block(x, padding_mask=mask)
            else:
                x = block(x, mask=mask)
        outputs = keras.layers.LayerNormalization(
            epsilon=1e-5, name="final_norm"
        )(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.block_type = block_type
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.vocabulary_size = vocabulary_size
        self.input_features = input_features
        self.padding_id = int(padding_id)
        self.sequence_length = sequence_length
        for key, value in given.items():
            setattr(self, key, value)
        self.block_kwargs = block_kwargs
        self.lipschitz_weight = lipschitz_weight
        self.lipschitz_normalize = bool(lipschitz_normalize)

    @property
    def takes_token_ids(self):
        """True for token-id inputs, False for value inputs."""
        return self.vocabulary_size is not None

    def padding_mask(self, inputs):
        """The mask of valid steps of token ids (None for values)."""
        if not self.takes_token_ids:
            return None
        return keras.ops.not_equal(inputs, self.padding_id)
