"""
Title: Text generation with a pretrained Mamba
Author: keras-ssm developers
Date created: 2026/12/03
Last modified: 2026/12/03
Description: Load Mamba language models from the Hub and generate text.
Accelerator: None
"""

"""
## Introduction

The pretrained Mamba (`state-spaces/mamba-130m-hf` ... `mamba-2.8b-hf`),
Mamba-2 and Falcon-Mamba (`tiiuae/falcon-mamba-7b`, Mamba with an RMS norm
on its selection) language models are published in the Hugging Face
layout: a
`config.json`, safetensors weights and a `tokenizer.json`.
`keras_ssm.models.SSMCausalLM.from_preset` reads that layout, from a local
folder or from `"hf://owner/name"`, and returns a Keras model that runs on
JAX, TensorFlow or PyTorch:

```python
lm = keras_ssm.models.SSMCausalLM.from_preset(
    "hf://state-spaces/mamba-130m-hf"
)
lm.generate("The capital of France is", max_length=30)
```

The weights are read with `safetensors` into NumPy, so no PyTorch is
needed on a JAX or TensorFlow installation.

Generation uses what makes a state space model cheap at inference: the
prompt goes through the parallel form once (a scan for Mamba, the chunked
SSD algorithm for Mamba-2), which leaves each block with a fixed-size
state; every new token is then one recurrent `step` of that state. The
decoding loop is a single compiled function (XLA on JAX and TensorFlow).

This guide runs offline on a tiny model of the same architecture, so that
it finishes in seconds: we train a small byte-pair tokenizer, train the
model on a few sentences, generate with several samplers, and save and
reload it as a preset. With internet access, set `PRETRAINED = True` to
run the same calls on `state-spaces/mamba-130m-hf`.
"""

"""
## Setup
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import matplotlib.pyplot as plt
import tokenizers

import keras_ssm
from keras_ssm.models import SSMCausalLM
from keras_ssm.models import SSMCausalLMBackbone
from keras_ssm.models import SSMCausalLMPreprocessor
from keras_ssm.models import SSMTokenizer

QUICK = os.environ.get("KERAS_SSM_QUICK") == "1"
OUTPUT_DIR = os.environ.get("KERAS_SSM_GUIDE_OUTPUT", "guide_outputs")
os.makedirs(OUTPUT_DIR, exist_ok=True)
keras.utils.set_random_seed(3)
PRETRAINED = False  # True downloads state-spaces/mamba-130m-hf (~0.5 GB)

"""
## The pretrained model (needs internet)

`from_preset("hf://...")` downloads the configuration, the safetensors
weights and the tokenizer into the Hugging Face cache, builds the
architecture the configuration names (`model_type` "mamba" or "mamba2")
and attaches the tokenizer, so `generate` takes and returns strings.
`compile(sampler=...)` picks a keras-hub sampler.
"""

if PRETRAINED:
    pretrained = SSMCausalLM.from_preset("hf://state-spaces/mamba-130m-hf")
    pretrained.compile(sampler="greedy")
    print(pretrained.generate("The capital of France is", max_length=30))

"""
## A tiny model, offline

The same classes build a model from scratch. A byte-level BPE tokenizer is
trained with the `tokenizers` package and wrapped in `SSMTokenizer`; the
preprocessor turns text into padded token ids.
"""

corpus = [
    "the cat sat on the mat.",
    "the dog sat on the log.",
    "a cat and a dog sat on a mat.",
    "the cat saw the dog on the log.",
    "state space models read long sequences.",
    "a state space model keeps a small state.",
] * 8

bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
bpe.decoder = tokenizers.decoders.ByteLevel()
bpe.train_from_iterator(
    corpus,
    tokenizers.trainers.BpeTrainer(
        vocab_size=96, special_tokens=["<|endoftext|>"], show_progress=False
    ),
)
tokenizer = SSMTokenizer(bpe.to_str(), end_token_id=0, pad_token_id=0)
preprocessor = SSMCausalLMPreprocessor(tokenizer, sequence_length=16)
print("vocabulary size:", tokenizer.vocabulary_size)
print(tokenizer.tokenize("the cat sat on the mat."))

"""
The backbone is the architecture of the pretrained checkpoints: an
embedding, residual Mamba blocks (`block_type="mamba2"` for Mamba-2), a
final RMSNorm and an LM head tied to the embedding.
"""

backbone = SSMCausalLMBackbone(
    vocabulary_size=tokenizer.vocabulary_size,
    hidden_dim=32,
    num_layers=2,
    block_type="mamba",
    block_config={"d_state": 8},
)
lm = SSMCausalLM(backbone, preprocessor=preprocessor)

"""
## Training

The preprocessor shifts the tokens by one: `x` holds the inputs, `y` the
next tokens and `sample_weight` masks the padding. Two sentences the model
never sees in training measure how well it generalises.
"""

x, y, sample_weight = preprocessor(corpus)
validation = preprocessor(
    ["the dog saw the cat on the mat.", "a dog keeps a small state."]
)
lm.compile(optimizer=keras.optimizers.Adam(1e-2))
history = lm.fit(
    x,
    y,
    sample_weight=sample_weight,
    validation_data=validation,
    batch_size=8,
    epochs=5 if QUICK else 40,
    verbose=0,
)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(history.history["loss"], label="training")
ax.plot(history.history["val_loss"], label="held-out sentences")
ax.legend()
ax.set_xlabel("epoch")
ax.set_ylabel("next-token cross-entropy")
fig.tight_layout()
fig.savefig(os.path.join(OUTPUT_DIR, "text_generation_loss.png"))

"""
## Generation

Greedy decoding takes the most likely token at each step. A batch may hold
prompts of different lengths; each continues from its own end. The
samplers of keras-hub plug in through `compile(sampler=...)`; with a seed
they are reproducible.
"""

lm.compile(sampler="greedy")
for text in lm.generate(["the cat", "a state space"], max_length=16):
    print(repr(text))

import keras_hub  # noqa: E402

lm.compile(sampler=keras_hub.samplers.TopKSampler(k=5, seed=1))
print(repr(lm.generate("the dog", max_length=16)))

"""
Without a preprocessor, `generate` takes and returns token ids:
`{"token_ids", "padding_mask"}` with right-padded prompts.
"""

ids = preprocessor.generate_preprocess(["the cat", "a dog sat"])
out = lm.generate(ids, max_length=12, stop_token_ids=None)
print(out["token_ids"])

"""
## Saving and loading

`save_to_preset` writes the configuration, the weights and the tokenizer;
`from_preset` reads them back (or a Hugging Face folder).
"""

preset_dir = os.path.join(OUTPUT_DIR, "tiny_mamba_lm")
lm.save_to_preset(preset_dir)
restored = SSMCausalLM.from_preset(preset_dir)
restored.compile(sampler="greedy")
print(repr(restored.generate("the cat", max_length=16)))
print(sorted(os.listdir(preset_dir)))
print("keras-ssm", keras_ssm.__version__)

"""
## Conclusion

* `SSMCausalLM.from_preset("hf://state-spaces/mamba-130m-hf")` (or a
  Mamba-2 or Falcon-Mamba checkpoint) loads pretrained weights
  without PyTorch and generates text on any backend.
* Generation prefills the prompt with the parallel form and decodes with
  the recurrent `step`: memory does not grow with the number of tokens.
* The keras-hub samplers (`"greedy"`, `"top_k"`, `"top_p"`, ...) plug in
  through `compile(sampler=...)`, and `save_to_preset` / `from_preset`
  round-trip the model with its tokenizer.
"""
