"""The language-model backbone of Mamba and Mamba-2 checkpoints."""

import keras
from keras import ops

from keras_ssm.layers.mamba2_block import Mamba2Block
from keras_ssm.layers.mamba_block import MambaBlock
from keras_ssm.layers.ssd import NO_TIME_STEP_LIMIT
from keras_ssm.models.causal_lm_state import PREFILL
from keras_ssm.models.config import ArgumentConfig
from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_choice
from keras_ssm.utils.validation import check_float
from keras_ssm.utils.validation import check_int

LM_BLOCK_TYPES = ("mamba", "mamba2")


def _make_block(block_type, block_config, norm_epsilon, time_step_limit):
    """One pre-RMSNorm residual block of the checkpoint's architecture."""
    if block_type == "mamba":
        return MambaBlock(norm="rms", norm_epsilon=norm_epsilon, **block_config)
    return Mamba2Block(
        norm="rms",
        norm_epsilon=norm_epsilon,
        time_step_limit=tuple(time_step_limit),
        **block_config,
    )


@keras.saving.register_keras_serializable(package="keras_ssm")
class SSMCausalLMBackbone(ArgumentConfig, keras.Model):
    """Token embedding, residual Mamba or Mamba-2 blocks, final RMSNorm.

    The architecture of the pretrained Mamba (`state-spaces/mamba-*`) and
    Mamba-2 language models: each block is pre-norm (RMSNorm, mixer,
    residual), as `keras_ssm.layers.MambaBlock` / `Mamba2Block` compute
    it. Called on `{"token_ids": (batch, length) ints, "padding_mask":
    (batch, length) bools}`, it returns the final hidden states `(batch,
    length, hidden_dim)`; `logits` maps them to the vocabulary through the
    LM head, the transposed embedding when `tie_word_embeddings`.

    For generation, `prefill` runs the parallel form over a prompt and
    returns the recurrent state of every block, and `step` advances that
    state by one token; the state does not grow with the number of tokens.

    Args:
        vocabulary_size: number of rows of the embedding (a checkpoint's
            padded vocabulary).
        hidden_dim: model width (Mamba's `d_model`).
        num_layers: number of blocks.
        block_type: `"mamba"` (`MambaBlock`) or `"mamba2"` (`Mamba2Block`).
        block_config: dict of the block's arguments (`d_state`, `d_conv`,
            `intermediate_dim`, `dt_rank`, `headdim`, `ngroups`, ...).
        norm_epsilon: epsilon of every RMSNorm.
        time_step_limit: `(low, high)` bounds on dt (Mamba-2 only).
        tie_word_embeddings: the LM head is the transposed embedding (True)
            or a separate kernel (False).
        **kwargs: `keras.Model` arguments (`name`, `dtype`).

    Example:

    >>> backbone = keras_ssm.models.SSMCausalLMBackbone(
    ...     vocabulary_size=64, hidden_dim=16, num_layers=2,
    ...     block_type="mamba", block_config={"d_state": 4})
    >>> ids = keras.ops.ones((1, 5), "int32")
    >>> hidden = backbone({"token_ids": ids, "padding_mask": ids > 0})
    >>> tuple(backbone.logits(hidden).shape)
    (1, 5, 64)
    """

    _config_header = ("dtype",)

    def __init__(
        self,
        vocabulary_size,
        hidden_dim,
        num_layers,
        block_type="mamba",
        block_config=None,
        norm_epsilon=1e-5,
        time_step_limit=NO_TIME_STEP_LIMIT,
        tie_word_embeddings=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = check_int(
            "vocabulary_size", vocabulary_size, minimum=1
        )
        self.hidden_dim = check_int("hidden_dim", hidden_dim, minimum=1)
        self.num_layers = check_int("num_layers", num_layers, minimum=1)
        self.block_type = check_choice("block_type", block_type, LM_BLOCK_TYPES)
        if block_config is not None and not isinstance(block_config, dict):
            raise ValueError(
                f"`block_config` must be a dict or None, got {block_config!r}."
            )
        self.block_config = dict(block_config or {})
        self.norm_epsilon = check_float(
            "norm_epsilon", norm_epsilon, minimum=0.0, min_open=True
        )
        if not isinstance(time_step_limit, (tuple, list)) or (
            len(time_step_limit) != 2
        ):
            raise ValueError(
                "`time_step_limit` must be a pair (low, high), got "
                f"{time_step_limit!r}."
            )
        self.time_step_limit = tuple(float(v) for v in time_step_limit)
        self.tie_word_embeddings = check_bool(
            "tie_word_embeddings", tie_word_embeddings
        )
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size,
            hidden_dim,
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.blocks = [
            _make_block(
                self.block_type,
                {
                    **self.block_config,
                    "name": f"block_{i}",
                    "dtype": self.dtype_policy,
                },
                self.norm_epsilon,
                self.time_step_limit,
            )
            for i in range(num_layers)
        ]
        self.final_norm = keras.layers.RMSNormalization(
            epsilon=self.norm_epsilon,
            dtype=self.dtype_policy,
            name="final_norm",
        )
        # RMSNorm is per position, so it passes a padding mask on unchanged
        # (without this Keras warns that the norms drop the blocks' mask).
        for norm in [self.final_norm] + [b.norm_layer for b in self.blocks]:
            norm.supports_masking = True
        self.lm_head = None
        if not self.tie_word_embeddings:
            self.lm_head = keras.layers.Dense(
                vocabulary_size,
                use_bias=False,
                dtype=self.dtype_policy,
                name="lm_head",
            )
        self.build(None)

    def build(self, input_shape=None):
        shape = (None, None, self.hidden_dim)
        self.token_embedding.build((None, None))
        for block in self.blocks:
            block.build(shape)
        self.final_norm.build(shape)
        if self.lm_head is not None:
            self.lm_head.build(shape)
        self.built = True

    # -- the parallel form ----------------------------------------------------

    @staticmethod
    def _unpack(inputs):
        if isinstance(inputs, dict):
            token_ids = inputs["token_ids"]
            padding_mask = inputs.get("padding_mask")
        else:
            token_ids, padding_mask = inputs, None
        if padding_mask is None:
            padding_mask = ops.ones_like(token_ids, dtype="bool")
        return token_ids, ops.cast(padding_mask, "bool")

    def call(self, inputs, training=None):
        token_ids, padding_mask = self._unpack(inputs)
        x = self.token_embedding(token_ids)
        for block in self.blocks:
            x = block(x, mask=padding_mask, training=training)
        return self.final_norm(x)

    def logits(self, hidden):
        """The LM head: `(..., hidden_dim)` -> `(..., vocabulary_size)`."""
        if len(hidden.shape) == 2 and keras.backend.backend() == "torch":
            # One decoding step, (batch, hidden) with a small batch: MKL's
            # product of the (vocabulary, hidden) rows by the hidden
            # states' columns takes about half the time of hidden @
            # rows^T on a CPU (17 ms against 38 ms at mamba-130m's
            # 50280 x 768, batch 8). The same products; only the order of
            # the float32 sums may differ.
            rows = ops.cast(self._head_rows(), hidden.dtype)
            return ops.transpose(ops.matmul(rows, ops.transpose(hidden)))
        if self.lm_head is not None:
            return self.lm_head(hidden)
        rows = ops.cast(self._head_rows(), hidden.dtype)
        return ops.matmul(hidden, ops.transpose(rows))

    def _head_rows(self):
        """The LM head as `(vocabulary_size, hidden_dim)` rows."""
        if self.lm_head is not None:
            return ops.transpose(self.lm_head.kernel)
        return self.token_embedding.embeddings

    # -- generation -----------------------------------------------------------

    def prefill(self, token_ids, mask, end):
        """The parallel form over a prompt, with every block's state.

        Args:
            token_ids: `(batch, length)` ints.
            mask: `(batch, length)` bools, True on the first `end` steps.
            end: number of leading steps the state has seen (a scalar).

        Returns:
            `(hidden, state)`: the final hidden states `(batch, length,
            hidden_dim)` and a tuple of one `(conv_state, ssm_state)` per
            block, the state after step `end`.
        """
        prefill = PREFILL[self.block_type]
        x = self.token_embedding(token_ids)
        state = []
        for block in self.blocks:
            x, block_state = prefill(block, x, mask, end)
            state.append(block_state)
        return self.final_norm(x), tuple(state)

    def get_initial_state(self, batch_size):
        """The zero state of every block (before any token)."""
        return tuple(
            block.get_initial_state(batch_size) for block in self.blocks
        )

    def step(self, token_ids, state):
        """One token `(batch,)` -> `(hidden (batch, hidden_dim), state)`."""
        x = self.token_embedding(token_ids)
        new_state = []
        for block, block_state in zip(self.blocks, state):
            x, block_state = block.step(x, block_state)
            new_state.append(tuple(block_state))
        hidden = self.final_norm(ops.expand_dims(x, 1))[:, 0]
        return hidden, tuple(new_state)
