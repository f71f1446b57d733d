"""The residual blocks an `SSMBackbone` stacks, by `block_type`.

`BLOCK_TYPES` is the one place that knows the block types: a new block type
is one entry, a `BlockType` naming the arguments it understands and a
function that builds one block. Layers are imported inside the builders, so
that a block type whose optional dependency (keras-hub for
`"transformer"`) is missing fails alone with a clear error.
"""

import collections

BlockType = collections.namedtuple("BlockType", "build arguments")
BlockType.__doc__ = """How to build one block of a block type.

Attributes:
    build: `build(settings, hidden_dim, num_layers, name)` returns one
        residual Keras layer mapping (batch, length, hidden_dim) to itself;
        `settings` holds the backbone arguments that were given (not None)
        among `arguments`, plus `block_kwargs`.
    arguments: the backbone arguments this block type understands.
"""


def _s4d(settings, hidden_dim, num_layers, name):
    from keras_ssm.layers import S4DBlock

    return S4DBlock(name=name, **settings)


def _etsmlp(gated):
    def build(settings, hidden_dim, num_layers, name):
        from keras_ssm.layers import ETSMLPBlock

        settings = dict(settings)
        width = settings.pop("intermediate_dim", None) or 2 * hidden_dim
        return ETSMLPBlock(
            intermediate_dim=width, gated=gated, name=name, **settings
        )

    return build


def _mamba(settings, hidden_dim, num_layers, name):
    from keras_ssm.layers import MambaBlock

    # Mamba scales its out_proj init by 1/sqrt(num_layers) of the stack.
    settings = {"num_layers": num_layers, **settings}
    return MambaBlock(name=name, **settings)


def _mamba2(settings, hidden_dim, num_layers, name):
    from keras_ssm.layers import Mamba2Block

    # As Mamba: out_proj's init is scaled by 1/sqrt(num_layers).
    settings = {"num_layers": num_layers, **settings}
    return Mamba2Block(name=name, **settings)


def _transformer(settings, hidden_dim, num_layers, name):
    settings = dict(settings)
    return _keras_hub().layers.TransformerEncoder(
        intermediate_dim=settings.pop("intermediate_dim", None)
        or 2 * hidden_dim,
        num_heads=settings.pop("num_heads", 4),
        dropout=settings.pop("dropout", 0.0),
        activation="gelu",
        normalize_first=True,
        name=name,
        **settings,
    )


def _keras_hub():
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            "The 'transformer' block type needs keras-hub (pip install "
            f"keras-hub): {error}. The other block types still work."
        ) from error
    return keras_hub


# The block vocabulary (norm, prenorm, dropout, bidirectional) plus each
# family's own sizes.
_ETSMLP_ARGUMENTS = (
    "intermediate_dim",
    "norm",
    "prenorm",
    "dropout",
    "bidirectional",
)
_MAMBA_ARGUMENTS = (
    "intermediate_dim",
    "d_state",
    "d_conv",
    "expand",
    "norm",
    "prenorm",
    "dropout",
    "bidirectional",
)

BLOCK_TYPES = {
    "s4d": BlockType(
        _s4d, ("d_state", "norm", "prenorm", "dropout", "bidirectional")
    ),
    "etsmlp": BlockType(_etsmlp(False), _ETSMLP_ARGUMENTS),
    "etsmlp_gate": BlockType(_etsmlp(True), _ETSMLP_ARGUMENTS),
    "mamba": BlockType(_mamba, _MAMBA_ARGUMENTS),
    "mamba2": BlockType(_mamba2, _MAMBA_ARGUMENTS),
    "transformer": BlockType(
        _transformer, ("intermediate_dim", "num_heads", "dropout")
    ),
}


def make_block(block_type, settings, hidden_dim, num_layers, name=None):
    """One residual block of `block_type` (see `BLOCK_TYPES`).

    Args:
        block_type: a key of `BLOCK_TYPES`.
        settings: dict of block arguments; an argument the block type does
            not understand raises a ValueError naming it.
        hidden_dim: the model width.
        num_layers: the depth of the stack (Mamba's init uses it).
        name: the layer name.

    Returns:
        A Keras layer mapping (batch, length, hidden_dim) to itself.
    """
    if block_type not in BLOCK_TYPES:
        raise ValueError(
            f"`block_type` must be one of {tuple(BLOCK_TYPES)}; got "
            f"{block_type!r}."
        )
    return BLOCK_TYPES[block_type].build(
        dict(settings), hidden_dim, num_layers, name
    )
