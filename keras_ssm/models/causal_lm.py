"""`SSMCausalLM`: next-token prediction and generation on a recurrent state."""

import itertools

import keras
import numpy as np
from keras import ops

from keras_ssm.models.causal_lm_backbone import SSMCausalLMBackbone


def _keras_hub_samplers():
    try:
        from keras_hub import samplers
    except ImportError:
        raise ImportError(
            "SSMCausalLM samplers come from keras-hub: "
            "`pip install keras-ssm[hub]`."
        ) from None
    return samplers


def _is_strings(inputs):
    """A string, or a non-empty list or tuple of strings."""
    return isinstance(inputs, str) or (
        isinstance(inputs, (list, tuple))
        and len(inputs) > 0
        and all(isinstance(s, str) for s in inputs)
    )


def _as_numpy_inputs(inputs):
    """`{"token_ids", "padding_mask"}` as NumPy (int32, bool) arrays."""
    if not isinstance(inputs, dict) or "token_ids" not in inputs:
        raise ValueError(
            "Without a preprocessor, `generate` takes a dict "
            '{"token_ids": (batch, length) ints, "padding_mask": (batch, '
            f"length) bools}}; got {type(inputs).__name__}."
        )
    token_ids = np.asarray(ops.convert_to_numpy(inputs["token_ids"]))
    if token_ids.ndim == 1:
        token_ids = token_ids[None]
    if token_ids.ndim != 2 or not np.issubdtype(token_ids.dtype, np.integer):
        raise ValueError(
            "`token_ids` must be a (batch, length) array of ints, got shape "
            f"{token_ids.shape} and dtype {token_ids.dtype}."
        )
    mask = inputs.get("padding_mask")
    if mask is None:
        mask = np.ones(token_ids.shape, bool)
    mask = np.asarray(ops.convert_to_numpy(mask)).astype(bool)
    if mask.ndim == 1:
        mask = mask[None]
    if mask.shape != token_ids.shape:
        raise ValueError(
            f"`padding_mask` of shape {mask.shape} does not match "
            f"`token_ids` of shape {token_ids.shape}."
        )
    if token_ids.shape[0] == 0:
        raise ValueError(
            "`token_ids` holds no prompts: its batch dimension is 0 (shape "
            f"{token_ids.shape}). Pass at least one prompt."
        )
    lengths = mask.sum(axis=1)
    positions = np.arange(mask.shape[1])[None]
    if not np.array_equal(mask, positions < lengths[:, None]):
        raise ValueError(
            "`padding_mask` must mark each prompt as a prefix (right "
            "padding: True then False on every row)."
        )
    if lengths.min() < 1:
        raise ValueError("Every prompt needs at least one token.")
    return token_ids.astype("int32"), mask


@keras.saving.register_keras_serializable(package="keras_ssm")
class SSMCausalLM(keras.Model):
    """A Mamba / Mamba-2 language model: logits, training and `generate`.

    Called on `{"token_ids": (batch, length) ints, "padding_mask": (batch,
    length) bools}` it returns the logits `(batch, length,
    vocabulary_size)`. `fit` trains next-token prediction: on texts, which
    the preprocessor (`SSMCausalLMPreprocessor`) tokenizes and shifts, or
    on the `(x, y, sample_weight)` it returns.

    `generate` decodes with a keras-hub sampler (`compile(sampler=...)`:
    `"greedy"` by default, `"top_k"`, `"top_p"`, ... or a
    `keras_hub.samplers.Sampler`). The prompt goes through the parallel
    form (scan / SSD) once, which leaves every block's conv and SSM state;
    then each new token is one `step` of that state, whose size does not
    depend on the number of tokens. The whole loop is one compiled function:
    `jax.jit` on JAX, an XLA `tf.function` on TensorFlow, and on PyTorch a
    loop under `torch.no_grad()`. In a batch of right-padded prompts each
    row continues from its own end.

    Load the pretrained Mamba and Mamba-2 checkpoints with `from_preset`,
    from a Hugging Face folder or `"hf://owner/name"`.

    Args:
        backbone: an `SSMCausalLMBackbone`.
        preprocessor: an `SSMCausalLMPreprocessor`, or None (then
            `generate` takes and returns token ids).
        **kwargs: `keras.Model` arguments.

    Example:

    ```python
    lm = keras_ssm.models.SSMCausalLM.from_preset(
        "hf://state-spaces/mamba-130m-hf")
    lm.compile(sampler="top_k")
    lm.generate("The capital of France is", max_length=30)
    ```
    """

    def __init__(self, backbone, preprocessor=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(backbone, SSMCausalLMBackbone):
            raise ValueError(
                "`backbone` must be an SSMCausalLMBackbone, got "
                f"{type(backbone).__name__}."
            )
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.sampler = None
        self.generate_function = None
        self._generate_key = None
        self.built = True

    def call(self, inputs, training=None):
        hidden = self.backbone(inputs, training=training)
        return self.backbone.logits(hidden)

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        weighted_metrics="auto",
        sampler="greedy",
        **kwargs,
    ):
        """`keras.Model.compile` with a sampler for `generate`.

        Args:
            optimizer: `"auto"`: AdamW(2e-5), or any Keras optimizer.
            loss: `"auto"`: sparse categorical cross-entropy on logits.
            weighted_metrics: `"auto"`: sparse categorical accuracy.
            sampler: a keras-hub sampler or its name (`"greedy"`,
                `"top_k"`, `"top_p"`, `"random"`, `"beam"`,
                `"contrastive"`).
            **kwargs: other `keras.Model.compile` arguments.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(2e-5)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if weighted_metrics == "auto":
            weighted_metrics = [keras.metrics.SparseCategoricalAccuracy()]
        super().compile(
            optimizer=optimizer,
            loss=loss,
            weighted_metrics=weighted_metrics,
            **kwargs,
        )
        self.sampler = _keras_hub_samplers().get(sampler)
        self.generate_function = None

    def _texts_to_batches(self, x, y, sample_weight):
        """Strings through the preprocessor; anything else unchanged."""
        if self.preprocessor is None or not _is_strings(x):
            return x, y, sample_weight
        if y is not None or sample_weight is not None:
            raise ValueError(
                "With texts as `x`, the preprocessor makes the labels and "
                "weights: pass no `y` or `sample_weight`."
            )
        return self.preprocessor(list(x) if not isinstance(x, str) else x)

    def fit(self, x=None, y=None, **kwargs):
        """`keras.Model.fit`; texts as `x` go through the preprocessor."""
        x, y, weight = self._texts_to_batches(
            x, y, kwargs.pop("sample_weight", None)
        )
        return super().fit(x, y, sample_weight=weight, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        """`keras.Model.evaluate`; texts go through the preprocessor."""
        x, y, weight = self._texts_to_batches(
            x, y, kwargs.pop("sample_weight", None)
        )
        return super().evaluate(x, y, sample_weight=weight, **kwargs)

    # -- generation -----------------------------------------------------------

    def generate_step(self, inputs, stop_token_ids=None):
        """One batch of padded prompts -> token ids filled in (compilable).

        Args:
            inputs: `{"token_ids": (batch, max_length), "padding_mask":
                (batch, max_length), "prefill_length": ()}`: the prompts,
                right-padded to the total length, and the static number of
                leading columns that go through the parallel form (at
                least the shortest prompt's length - 1).
            stop_token_ids: tuple of ids that end a row, or None.
        """
        token_ids = inputs["token_ids"]
        padding_mask = ops.cast(inputs["padding_mask"], "bool")
        prefill_length = inputs["prefill_length"]
        batch = ops.shape(token_ids)[0]
        lengths = ops.sum(ops.cast(padding_mask, "int32"), axis=1)
        # Decoding starts at the shortest prompt's end; the longer prompts'
        # remaining tokens are fed to `step` and kept, as keras-hub does.
        index = ops.min(lengths)
        end = index - 1  # the parallel form covers the steps before it
        prompt = token_ids[:, :prefill_length]
        positions = ops.arange(prefill_length, dtype="int32")[None, :]
        prefill_mask = ops.broadcast_to(
            positions < end, (batch, prefill_length)
        )
        _, state = self.backbone.prefill(prompt, prefill_mask, end)

        def next(prompt, cache, index):
            token = ops.take_along_axis(
                prompt, ops.broadcast_to(index - 1, (batch, 1)), axis=1
            )[:, 0]
            hidden, cache = self.backbone.step(token, cache)
            return self.backbone.logits(hidden), hidden, cache

        return self.sampler(
            next=next,
            prompt=token_ids,
            cache=state,
            index=index,
            mask=padding_mask,
            stop_token_ids=stop_token_ids,
            model=self,
        )

    def make_generate_function(self, stop_token_ids=None):
        """The compiled `generate_step` of this backend (cached)."""
        key = (stop_token_ids, id(self.sampler))
        if self.generate_function is not None and self._generate_key == key:
            return self.generate_function
        backend = keras.config.backend()
        step = self.generate_step
        if backend == "torch":
            import torch

            def function(inputs):
                with torch.no_grad():
                    return step(inputs, stop_token_ids)

        elif backend == "tensorflow" and not self.run_eagerly:
            import tensorflow as tf

            compiled = tf.function(
                lambda token_ids, padding_mask, prefill_length: step(
                    {
                        "token_ids": token_ids,
                        "padding_mask": padding_mask,
                        "prefill_length": prefill_length,
                    },
                    stop_token_ids,
                ),
                jit_compile=True,
                reduce_retracing=False,
            )

            def function(inputs):
                return compiled(
                    inputs["token_ids"],
                    inputs["padding_mask"],
                    inputs["prefill_length"],
                )

        elif backend == "jax" and not self.run_eagerly:
            import jax

            def stateless(token_ids, padding_mask, prefill_length, state):
                sampler_vars, trainable, non_trainable = state
                mapping = itertools.chain(
                    zip(self.sampler.variables, sampler_vars),
                    zip(self.trainable_variables, trainable),
                    zip(self.non_trainable_variables, non_trainable),
                )
                with keras.StatelessScope(state_mapping=mapping) as scope:
                    outputs = step(
                        {
                            "token_ids": token_ids,
                            "padding_mask": padding_mask,
                            "prefill_length": prefill_length,
                        },
                        stop_token_ids,
                    )
                sampler_vars = [
                    scope.get_current_value(v)
                    if scope.get_current_value(v) is not None
                    else v.value
                    for v in self.sampler.variables
                ]
                return outputs, sampler_vars

            compiled = jax.jit(stateless, static_argnums=(2,))

            def function(inputs):
                state = (
                    [v.value for v in self.sampler.variables],
                    [v.value for v in self.trainable_variables],
                    [v.value for v in self.non_trainable_variables],
                )
                outputs, sampler_vars = compiled(
                    inputs["token_ids"],
                    inputs["padding_mask"],
                    inputs["prefill_length"],
                    state,
                )
                for variable, value in zip(
                    self.sampler.variables, sampler_vars
                ):
                    variable.assign(value)
                return outputs

        else:

            def function(inputs):
                return step(inputs, stop_token_ids)

        self.generate_function = function
        self._generate_key = key
        return function

    def generate(self, inputs, max_length=None, stop_token_ids="auto"):
        """Continues prompts, with the compiled sampler loop.

        Args:
            inputs: with a preprocessor, a string or a list of strings;
                without one (or also with one), a dict `{"token_ids":
                (batch, length) ints, "padding_mask": (batch, length)
                bools}` of right-padded prompts.
            max_length: total length (prompt + continuation) of each row;
                `None`: the preprocessor's `sequence_length`, else the
                length of `token_ids`.
            stop_token_ids: `"auto"` (the tokenizer's end token with a
                preprocessor, none without), None, or a list of ids; a row
                ends at its first stop token after the prompt.

        Returns:
            Strings (prompt and continuation) for string inputs, else the
            dict with the continuations filled in and `padding_mask` True
            on every prompt and generated token (up to a stop token).
        """
        if self.sampler is None:
            self.compile()
        strings = _is_strings(inputs)
        if strings:
            if self.preprocessor is None:
                raise ValueError(
                    "This SSMCausalLM has no preprocessor: pass "
                    '{"token_ids", "padding_mask"} instead of strings.'
                )
            single = isinstance(inputs, str)
            inputs = self.preprocessor.generate_preprocess(
                [inputs] if single else list(inputs)
            )
        if max_length is None and self.preprocessor is not None and strings:
            max_length = self.preprocessor.sequence_length
        if stop_token_ids == "auto":
            stop_token_ids = None
            if self.preprocessor is not None:
                end = self.preprocessor.tokenizer.end_token_id
                stop_token_ids = None if end is None else [end]
        if stop_token_ids is not None:
            stop_token_ids = tuple(int(i) for i in stop_token_ids)
        outputs = self._generate_ids(inputs, max_length, stop_token_ids)
        if strings:
            texts = self.preprocessor.generate_postprocess(outputs)
            return texts[0] if single else texts
        return outputs

    def _generate_ids(self, inputs, max_length, stop_token_ids):
        token_ids, mask = _as_numpy_inputs(inputs)
        batch, length = token_ids.shape
        lengths = mask.sum(axis=1)
        if max_length is None:
            max_length = length
        if isinstance(max_length, bool) or not isinstance(
            max_length, (int, np.integer)
        ):
            raise ValueError(
                f"`max_length` must be an int or None, got {max_length!r}."
            )
        if lengths.max() > max_length:
            raise ValueError(
                f"A prompt of {lengths.max()} tokens is longer than "
                f"`max_length={max_length}`."
            )
        # The parallel form covers the steps before the shortest prompt's
        # last token (a static length; at least one step, then masked).
        prefill_length = max(int(lengths.min()) - 1, 1)
        kept = int(lengths.max())
        padded = np.zeros((batch, max_length), "int32")
        padded_mask = np.zeros((batch, max_length), bool)
        padded[:, :kept] = token_ids[:, :kept]
        padded_mask[:, :kept] = mask[:, :kept]
        padded = np.where(padded_mask, padded, 0)
        if lengths.min() >= max_length:  # nothing to generate
            return {"token_ids": padded, "padding_mask": padded_mask}
        function = self.make_generate_function(stop_token_ids)
        out = function(
            {
                "token_ids": ops.convert_to_tensor(padded),
                "padding_mask": ops.convert_to_tensor(padded_mask),
                "prefill_length": prefill_length,
            }
        )
        out = np.asarray(ops.convert_to_numpy(out)).astype("int32")
        out_mask = np.ones_like(padded_mask)
        if stop_token_ids is not None:
            positions = np.arange(max_length)[None]
            stops = np.isin(out, stop_token_ids) & ~padded_mask
            first = np.where(
                stops.any(axis=1), np.argmax(stops, axis=1), max_length
            )
            out_mask = positions <= first[:, None]
        out = np.where(out_mask, out, 0)
        return {"token_ids": out, "padding_mask": out_mask}

    # -- serialization --------------------------------------------------------

    def get_config(self):
        config = {
            "name": self.name,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "preprocessor": None,
        }
        if self.preprocessor is not None:
            config["preprocessor"] = self.preprocessor.get_config()
        return config

    @classmethod
    def from_config(cls, config):
        from keras_ssm.models.causal_lm_preprocessor import (
            SSMCausalLMPreprocessor,
        )

        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(
            config["backbone"]
        )
        if config.get("preprocessor") is not None:
            config["preprocessor"] = SSMCausalLMPreprocessor.from_config(
                config["preprocessor"]
            )
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """A language model from a checkpoint folder or `"hf://owner/name"`.

        Args:
            preset: a folder in the Hugging Face layout (`config.json` with
                `model_type` "mamba" or "mamba2", `model.safetensors` or
                sharded safetensors with their index, optional
                `tokenizer.json`), `"hf://owner/name"`, or a folder written
                by `save_to_preset`.
            load_weights: False builds the architecture with random weights.
            **kwargs: arguments of the model (`preprocessor=None` drops the
                tokenizer; `sequence_length=` sets the preprocessor's).

        Example:

        ```python
        lm = SSMCausalLM.from_preset("hf://state-spaces/mamba-130m-hf")
        ```
        """
        from keras_ssm.models.causal_lm_preset import load_causal_lm

        return load_causal_lm(cls, preset, load_weights=load_weights, **kwargs)

    def save_to_preset(self, preset_dir):
        """Saves configuration, weights and tokenizer to a folder.

        `SSMCausalLM.from_preset(preset_dir)` loads it back.
        """
        from keras_ssm.models.causal_lm_preset import save_causal_lm

        save_causal_lm(self, preset_dir)
