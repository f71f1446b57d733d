"""SSMCausalLM against tiny random transformers Mamba / Mamba-2 models."""

import json
import os

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_numpy = pytest.importorskip("safetensors.numpy")
tokenizers = pytest.importorskip("tokenizers")
keras_hub = pytest.importorskip("keras_hub")

from keras_ssm.models import SSMCausalLM  # noqa: E402
from keras_ssm.models import SSMCausalLMBackbone  # noqa: E402

VOCAB = 48
PROMPTS = [[5, 9, 3], [7, 2, 11, 4, 8, 30, 6], [12, 1, 40, 3, 9]]
MAX_LENGTH = 12
CORPUS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog met on a mat",
    "state space models read long sequences",
] * 4


# What the tiny Mamba and Mamba-2 checkpoints share.
TINY = {
    "vocab_size": VOCAB,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "conv_kernel": 4,
    "expand": 2,
    "eos_token_id": 0,
    "pad_token_id": 0,
    "bos_token_id": 0,
}


def _mamba(tie=True, falcon=False, **overrides):
    if falcon:  # Mamba with weightless RMS norms on dt_low, B and C
        config_class = transformers.FalconMambaConfig
        model_class = transformers.FalconMambaForCausalLM
        overrides = {"mixer_rms_eps": 1e-3, **overrides}
    else:
        config_class = transformers.MambaConfig
        model_class = transformers.MambaForCausalLM
    config = config_class(
        **TINY, state_size=4, time_step_rank=3, tie_word_embeddings=tie,
        **overrides,
    )  # fmt: skip
    return model_class(config)


def _mamba2(groups=1, tie=True, **overrides):
    config = transformers.Mamba2Config(
        **TINY, state_size=8, head_dim=8, num_heads=4, n_groups=groups,
        chunk_size=4, tie_word_embeddings=tie, **overrides,
    )  # fmt: skip
    return transformers.Mamba2ForCausalLM(config)


MODELS = {
    "mamba_tied": lambda: _mamba(tie=True),
    "mamba_untied": lambda: _mamba(tie=False),
    "falcon_mamba_tied": lambda: _mamba(tie=True, falcon=True),
    "mamba2_g1_tied": lambda: _mamba2(groups=1, tie=True),
    "mamba2_g2_untied": lambda: _mamba2(groups=2, tie=False),
}


def _save(model, folder, **kwargs):
    model.save_pretrained(folder, **kwargs)
    return str(folder)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{name: (folder, transformers model)}, weights randomised further."""
    out = {}
    for i, (name, make) in enumerate(MODELS.items()):
        torch.manual_seed(i)
        model = make().eval()
        with torch.no_grad():  # move A_log, D, dt_bias off their inits
            for key, param in model.named_parameters():
                if key.endswith(("A_log", ".D", "dt_bias", "norm.weight")):
                    param.add_(0.3 * torch.rand_like(param))
        folder = tmp_path_factory.mktemp(name)
        out[name] = (_save(model, folder), model)
    return out


@pytest.fixture(scope="module")
def loaded(checkpoints):
    """{name: SSMCausalLM} loaded once per module (building costs time)."""
    return {
        name: SSMCausalLM.from_preset(folder)
        for name, (folder, _) in checkpoints.items()
    }


def _hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


def _relative_error(ours, ref):
    return np.max(np.abs(ours - ref)) / np.max(np.abs(ref))


def _padded(prompts, length=None):
    length = length or max(map(len, prompts))
    ids = np.zeros((len(prompts), length), "int32")
    mask = np.zeros((len(prompts), length), bool)
    for i, p in enumerate(prompts):
        ids[i, : len(p)] = p
        mask[i, : len(p)] = True
    return {"token_ids": ids, "padding_mask": mask}


def _hf_greedy(model, prompt, max_length):
    model.generation_config.eos_token_id = None
    with torch.no_grad():
        out = model.generate(
            torch.tensor([prompt]),
            max_new_tokens=max_length - len(prompt),
            do_sample=False,
            pad_token_id=0,
        )
    return out[0].numpy()


@pytest.mark.parametrize("name", list(MODELS))
def test_logits_and_greedy_generate_match_transformers(
    checkpoints, loaded, name
):
    _, model = checkpoints[name]
    lm = loaded[name]
    assert lm.preprocessor is None  # no tokenizer.json in the folder
    if name.startswith("falcon"):
        ssm = lm.backbone.blocks[0].ssm
        assert ssm.selection_norm_epsilon == pytest.approx(1e-3)
    inputs = _padded(PROMPTS)
    logits = keras.ops.convert_to_numpy(lm(inputs))
    assert logits.shape == (3, 7, VOCAB)
    for row, prompt in enumerate(PROMPTS):
        ref = _hf_logits(model, [prompt])[0]
        ours = logits[row, : len(prompt)]
        assert _relative_error(ours, ref) < 1e-4, (name, row)

    # One batch of right-padded prompts of different lengths: each row
    # continues from its own end, token for token as transformers' cached
    # greedy decoding of that prompt alone.
    lm.compile(sampler="greedy")
    out = lm.generate(inputs, max_length=MAX_LENGTH)
    assert out["token_ids"].shape == (3, MAX_LENGTH)
    assert out["padding_mask"].all()
    for row, prompt in enumerate(PROMPTS):
        expected = _hf_greedy(model, prompt, MAX_LENGTH)
        np.testing.assert_array_equal(out["token_ids"][row], expected)


def test_prefill_then_step_equals_parallel_form(loaded):
    backbone = loaded["mamba2_g2_untied"].backbone
    ids = np.array([PROMPTS[1]], "int32")
    full = keras.ops.convert_to_numpy(
        backbone.logits(backbone({"token_ids": ids}))
    )
    end = 5
    mask = np.arange(ids.shape[1])[None] < end
    _, state = backbone.prefill(ids, mask, end)
    for t in range(end, ids.shape[1]):
        hidden, state = backbone.step(
            keras.ops.convert_to_tensor(ids[:, t]), state
        )
        step_logits = keras.ops.convert_to_numpy(backbone.logits(hidden))
        np.testing.assert_allclose(step_logits, full[:, t], atol=1e-5)


def test_sharded_checkpoint(checkpoints, tmp_path):
    _, model = checkpoints["mamba_untied"]
    folder = _save(model, tmp_path, max_shard_size="20KB")
    files = os.listdir(folder)
    assert "model.safetensors.index.json" in files
    assert sum(f.endswith(".safetensors") for f in files) > 1
    lm = SSMCausalLM.from_preset(folder)
    logits = keras.ops.convert_to_numpy(lm(_padded([PROMPTS[1]])))
    ref = _hf_logits(model, [PROMPTS[1]])
    assert _relative_error(logits, ref) < 1e-4


@pytest.fixture(scope="module")
def text_checkpoint(checkpoints, tmp_path_factory):
    """The tied Mamba checkpoint with a BPE tokenizer.json trained here."""
    _, model = checkpoints["mamba_tied"]
    folder = _save(model, tmp_path_factory.mktemp("text"))
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token=None))
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(
        add_prefix_space=False
    )
    bpe.decoder = tokenizers.decoders.ByteLevel()
    # The byte alphabet alone is 256 tokens: keep the vocabulary small by
    # training on the corpus' own characters only.
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=["<|endoftext|>"], show_progress=False
    )
    bpe.train_from_iterator(CORPUS, trainer)
    assert bpe.get_vocab_size() <= VOCAB
    bpe.save(os.path.join(folder, "tokenizer.json"))
    return folder, model, bpe


def test_text_generation(text_checkpoint):
    folder, model, bpe = text_checkpoint
    lm = SSMCausalLM.from_preset(folder, sequence_length=16)
    assert lm.preprocessor is not None
    assert lm.preprocessor.tokenizer.end_token_id == 0
    prompts = ["the cat sat", "a dog"]
    texts = lm.generate(prompts, stop_token_ids=None)
    assert isinstance(texts, list) and len(texts) == 2
    for prompt, text in zip(prompts, texts):
        expected = _hf_greedy(model, bpe.encode(prompt).ids, 16)
        assert text == bpe.decode(expected.tolist(), skip_special_tokens=True)
    with pytest.raises(ValueError, match="longer than `max_length=16`"):
        lm.generate("the cat sat on the mat " * 4)


def test_stop_token_ends_rows(checkpoints, loaded):
    _, model = checkpoints["mamba_tied"]
    lm = loaded["mamba_tied"]
    expected = _hf_greedy(model, PROMPTS[0], MAX_LENGTH)
    stop = int(expected[len(PROMPTS[0]) + 1])  # the second generated token
    out = lm.generate(
        _padded([PROMPTS[0]]), max_length=MAX_LENGTH, stop_token_ids=[stop]
    )
    first = len(PROMPTS[0]) + list(expected[len(PROMPTS[0]) :]).index(stop)
    assert out["padding_mask"][0].sum() == first + 1
    assert (out["token_ids"][0, first + 1 :] == 0).all()
    np.testing.assert_array_equal(
        out["token_ids"][0, : first + 1], expected[: first + 1]
    )


def test_seeded_sampling_is_reproducible(loaded):
    lm = loaded["mamba2_g1_tied"]
    for sampler in (
        keras_hub.samplers.TopKSampler(k=5, seed=3),
        keras_hub.samplers.TopPSampler(p=0.9, seed=3),
    ):
        lm.compile(sampler=sampler)
        seed = [keras.ops.convert_to_numpy(v) for v in sampler.variables]
        first = lm.generate(_padded(PROMPTS), max_length=MAX_LENGTH)
        second = lm.generate(_padded(PROMPTS), max_length=MAX_LENGTH)
        # The seed generator moved on: a different draw.
        assert not np.array_equal(first["token_ids"], second["token_ids"])
        for variable, value in zip(sampler.variables, seed):
            variable.assign(value)
        again = lm.generate(_padded(PROMPTS), max_length=MAX_LENGTH)
        np.testing.assert_array_equal(again["token_ids"], first["token_ids"])
        # The prompts are kept whatever the sampler draws.
        for row, prompt in enumerate(PROMPTS):
            np.testing.assert_array_equal(
                first["token_ids"][row, : len(prompt)], prompt
            )


def test_save_to_preset_round_trip(text_checkpoint, tmp_path):
    folder, model, bpe = text_checkpoint
    lm = SSMCausalLM.from_preset(folder, sequence_length=14)
    lm.save_to_preset(tmp_path / "preset")
    files = set(os.listdir(tmp_path / "preset"))
    assert {"config.json", "model.weights.h5", "task.json"} <= files
    assert not any(f.endswith(".partial") for f in files)
    loaded = SSMCausalLM.from_preset(str(tmp_path / "preset"))
    inputs = _padded(PROMPTS)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(lm(inputs)),
        keras.ops.convert_to_numpy(loaded(inputs)),
    )
    assert loaded.preprocessor.sequence_length == 14
    text = loaded.generate("the dog", stop_token_ids=None)  # one string
    expected = _hf_greedy(model, bpe.encode("the dog").ids, 14)
    assert text == bpe.decode(expected.tolist(), skip_special_tokens=True)


def test_hf_path_downloads_into_the_hub_cache(checkpoints, monkeypatch):
    import huggingface_hub

    folder, model = checkpoints["mamba_untied"]
    calls = []

    def snapshot_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, allow_patterns))
        return folder

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    lm = SSMCausalLM.from_preset("hf://owner/tiny-mamba")
    repo_id, revision, patterns = calls[0]
    assert (repo_id, revision) == ("owner/tiny-mamba", None)
    assert "*.safetensors" in patterns and "tokenizer.json" in patterns
    assert not any(p.endswith(".bin") for p in patterns)
    logits = keras.ops.convert_to_numpy(lm(_padded([PROMPTS[0]])))
    assert _relative_error(logits, _hf_logits(model, [PROMPTS[0]])) < 1e-4
    with pytest.raises(ValueError, match="hf://owner/name"):
        SSMCausalLM.from_preset("hf://just-a-name")


def test_fit_next_token_prediction(text_checkpoint):
    folder, _, _ = text_checkpoint
    lm = SSMCausalLM.from_preset(folder, sequence_length=8)
    x, y, sample_weight = lm.preprocessor(CORPUS[:4])
    assert x["token_ids"].shape == y.shape == (4, 8)
    np.testing.assert_array_equal(x["token_ids"][:, 1:], y[:, :-1])
    lm.compile(optimizer=keras.optimizers.SGD(0.1))
    history = lm.fit(
        x, y, sample_weight=sample_weight, epochs=3, batch_size=4, verbose=0
    )
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    # Texts go through the preprocessor.
    text_history = lm.fit(CORPUS[:4], epochs=1, batch_size=4, verbose=0)
    assert text_history.history["loss"][0] < losses[0]
    with pytest.raises(ValueError, match="preprocessor makes the labels"):
        lm.fit(CORPUS[:4], y, verbose=0)


# -- errors -------------------------------------------------------------------


def _rewrite_config(folder, **changes):
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        config = json.load(f)
    config.update(changes)
    with open(path, "w") as f:
        json.dump(config, f)


def test_unknown_model_type(checkpoints, tmp_path):
    _, model = checkpoints["mamba_tied"]
    folder = _save(model, tmp_path)
    _rewrite_config(folder, model_type="llama")
    with pytest.raises(ValueError, match="Unsupported model_type 'llama'"):
        SSMCausalLM.from_preset(folder)


def _edit_weights(folder, edit):
    path = os.path.join(folder, "model.safetensors")
    tensors = safetensors_numpy.load_file(path)
    edit(tensors)
    safetensors_numpy.save_file(tensors, path)


def test_missing_and_misshaped_weights(checkpoints, tmp_path):
    _, model = checkpoints["mamba2_g2_untied"]
    folder = _save(model, tmp_path / "missing")
    _edit_weights(folder, lambda t: t.pop("backbone.layers.1.mixer.dt_bias"))
    with pytest.raises(
        ValueError, match=r"lacks 1 weight.*layers\.1\.mixer\.dt_bias"
    ):
        SSMCausalLM.from_preset(folder)

    folder = _save(model, tmp_path / "shape")

    def truncate(tensors):
        key = "backbone.layers.0.mixer.conv1d.weight"
        tensors[key] = tensors[key][:-1].copy()

    _edit_weights(folder, truncate)
    with pytest.raises(
        ValueError, match=r"'layers\.0\.mixer\.conv1d\.weight' has shape"
    ):
        SSMCausalLM.from_preset(folder)
    # Without weights, the architecture alone builds.
    assert SSMCausalLM.from_preset(folder, load_weights=False).backbone.built


def test_prompt_longer_than_max_length(loaded):
    lm = loaded["mamba_tied"]
    with pytest.raises(ValueError, match="longer than `max_length=5`"):
        lm.generate(_padded(PROMPTS), max_length=5)
    with pytest.raises(ValueError, match="right padding"):
        lm.generate(
            {
                "token_ids": np.ones((1, 4), "int32"),
                "padding_mask": np.array([[False, True, True, True]]),
            }
        )
    with pytest.raises(ValueError, match="no preprocessor"):
        lm.generate("some text")
    with pytest.raises(ValueError, match="holds no prompts"):
        lm.generate({"token_ids": np.zeros((0, 4), "int32")})
    with pytest.raises(ValueError, match="at least one token"):
        lm.generate(
            {
                "token_ids": np.ones((2, 4), "int32"),
                "padding_mask": np.array([[True] * 4, [False] * 4]),
            }
        )


def _one_mamba2_block(d_state, **kwargs):
    """A backbone of one Mamba-2 block, 16 wide."""
    return SSMCausalLMBackbone(
        vocabulary_size=VOCAB,
        hidden_dim=16,
        num_layers=1,
        block_type="mamba2",
        block_config={"d_state": d_state, "headdim": 8},
        **kwargs,
    )


def test_backbone_config_round_trip():
    backbone = _one_mamba2_block(d_state=4, tie_word_embeddings=False)
    restored = SSMCausalLMBackbone.from_config(backbone.get_config())
    assert restored.get_config() == backbone.get_config()
    with pytest.raises(ValueError, match="block_type"):
        SSMCausalLMBackbone(
            vocabulary_size=8, hidden_dim=8, num_layers=1, block_type="s4d"
        )


def test_keras_file_round_trip(loaded, tmp_path):
    lm = loaded["mamba2_g2_untied"]
    path = str(tmp_path / "lm.keras")
    lm.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, SSMCausalLM)
    inputs = _padded(PROMPTS)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(lm(inputs)),
        keras.ops.convert_to_numpy(restored(inputs)),
    )


def test_mixed_precision_fit_and_generate():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        backbone = _one_mamba2_block(d_state=8)
        lm = SSMCausalLM(backbone)
        ids = np.random.default_rng(0).integers(1, VOCAB, (4, 9))
        x = {"token_ids": ids[:, :-1], "padding_mask": np.ones((4, 8), bool)}
        lm.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = lm.fit(x, ids[:, 1:], epochs=2, verbose=0)
        assert np.all(np.isfinite(history.history["loss"]))
        prompts = _padded(PROMPTS)
        out = lm.generate(prompts, max_length=MAX_LENGTH)
        assert out["token_ids"].shape == (3, MAX_LENGTH)
        assert ((out["token_ids"] >= 0) & (out["token_ids"] < VOCAB)).all()
    finally:
        keras.config.set_dtype_policy(policy)
