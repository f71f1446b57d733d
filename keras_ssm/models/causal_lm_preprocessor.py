"""Tokenizer and preprocessor of `SSMCausalLM`: text <-> padded token ids.

The tokenizer reads a Hugging Face `tokenizer.json` with the `tokenizers`
package. keras-hub's `BytePairTokenizer` would need the vocabulary and
merges converted from that file and runs on TensorFlow (tensorflow-text)
under every backend; `tokenizers` reproduces the checkpoint's own
tokenization (pre-tokenizer, normalizer, special tokens) exactly and needs
no TensorFlow, so a JAX- or PyTorch-only installation generates text.
"""

import os

import numpy as np

from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_instance
from keras_ssm.utils.validation import check_int


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ImportError(
            "The SSMCausalLM tokenizer reads tokenizer.json with the "
            "`tokenizers` package: `pip install keras-ssm[hf]`."
        ) from None
    return tokenizers


class SSMTokenizer:
    """A `tokenizer.json` tokenizer (byte-level BPE for Mamba's GPT-NeoX).

    Args:
        tokenizer_json: the contents of a Hugging Face `tokenizer.json`.
        start_token_id: id of the start-of-text token, or None.
        end_token_id: id of the end-of-text token (generation stops on
            it), or None.
        pad_token_id: id that fills padded positions (default 0).

    Example:

    ```python
    tokenizer = SSMTokenizer.from_file("tokenizer.json", end_token_id=0)
    ids = tokenizer.tokenize(["The capital of France is"])
    text = tokenizer.detokenize(ids)
    ```
    """

    def __init__(
        self,
        tokenizer_json,
        start_token_id=None,
        end_token_id=None,
        pad_token_id=None,
    ):
        self.tokenizer_json = check_instance(
            "tokenizer_json",
            tokenizer_json,
            str,
            "the text of a tokenizer.json",
        )
        self.backend = _tokenizers().Tokenizer.from_str(tokenizer_json)
        ids = {
            "start_token_id": start_token_id,
            "end_token_id": end_token_id,
            "pad_token_id": pad_token_id,
        }
        for name, value in ids.items():
            check_int(name, value, minimum=0, allow_none=True)
        self.start_token_id = start_token_id
        self.end_token_id = end_token_id
        self.pad_token_id = 0 if pad_token_id is None else pad_token_id

    @classmethod
    def from_file(cls, path, **kwargs):
        """The tokenizer of a `tokenizer.json` file."""
        with open(path, encoding="utf-8") as f:
            return cls(f.read(), **kwargs)

    @property
    def vocabulary_size(self):
        return self.backend.get_vocab_size()

    def token_to_id(self, token):
        return self.backend.token_to_id(token)

    def id_to_token(self, token_id):
        return self.backend.id_to_token(int(token_id))

    def tokenize(self, texts):
        """Strings -> lists of ids (with the file's special-token template)."""
        single = isinstance(texts, str)
        encodings = self.backend.encode_batch([texts] if single else texts)
        ids = [list(e.ids) for e in encodings]
        return ids[0] if single else ids

    def detokenize(self, ids):
        """Lists of ids -> strings, special tokens dropped."""
        rows = [[int(i) for i in row] for row in ids]
        return self.backend.decode_batch(rows, skip_special_tokens=True)

    def get_config(self):
        return {
            "start_token_id": self.start_token_id,
            "end_token_id": self.end_token_id,
            "pad_token_id": self.pad_token_id,
        }

    def save_assets(self, folder):
        """Writes `tokenizer.json` into `folder` (temporary name, replace)."""
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "tokenizer.json")
        partial = path + ".partial"
        with open(partial, "w", encoding="utf-8") as f:
            f.write(self.tokenizer_json)
        os.replace(partial, path)


class SSMCausalLMPreprocessor:
    """Text -> `{"token_ids", "padding_mask"}` for `SSMCausalLM`.

    Called on strings, it returns the `(x, y, sample_weight)` of
    next-token training: the ids truncated or right-padded to
    `sequence_length + 1`, `x` all but the last, `y` all but the first,
    `sample_weight` the padding mask of `y`. For generation,
    `generate_preprocess` tokenizes prompts (right-padded to the longest)
    and `generate_postprocess` turns generated ids back into text.

    Args:
        tokenizer: an `SSMTokenizer`.
        sequence_length: training length, and the default total length of
            `generate` on strings.
        add_start_token: put the start token before each text.
        add_end_token: put the end token after each training text.

    Example:

    ```python
    preprocessor = SSMCausalLMPreprocessor(tokenizer, sequence_length=128)
    x, y, sample_weight = preprocessor(["some text", "more text"])
    lm.fit(x, y, sample_weight=sample_weight)
    ```
    """

    def __init__(
        self,
        tokenizer,
        sequence_length=1024,
        add_start_token=False,
        add_end_token=True,
    ):
        self.tokenizer = check_instance(
            "tokenizer", tokenizer, SSMTokenizer, "an SSMTokenizer"
        )
        self.sequence_length = check_int(
            "sequence_length", sequence_length, minimum=1
        )
        self.add_start_token = check_bool("add_start_token", add_start_token)
        self.add_end_token = check_bool("add_end_token", add_end_token)

    def _ids(self, texts, end):
        if isinstance(texts, str):
            texts = [texts]
        texts = [t.decode() if isinstance(t, bytes) else t for t in texts]
        if not all(isinstance(t, str) for t in texts):
            raise ValueError("The preprocessor takes a string or strings.")
        rows = self.tokenizer.tokenize(list(texts))
        start = self.tokenizer.start_token_id
        stop = self.tokenizer.end_token_id
        if self.add_start_token and start is not None:
            rows = [[start] + r for r in rows]
        if end and stop is not None:
            rows = [r + [stop] for r in rows]
        return rows

    def _pad(self, rows, length):
        ids = np.full((len(rows), length), self.tokenizer.pad_token_id, "int32")
        mask = np.zeros((len(rows), length), bool)
        for i, row in enumerate(rows):
            row = row[:length]
            ids[i, : len(row)] = row
            mask[i, : len(row)] = True
        return ids, mask

    def __call__(self, x, y=None, sample_weight=None, sequence_length=None):
        if y is not None or sample_weight is not None:
            raise ValueError(
                "The causal LM preprocessor makes its own labels; pass "
                "only texts."
            )
        length = (sequence_length or self.sequence_length) + 1
        ids, mask = self._pad(self._ids(x, self.add_end_token), length)
        inputs = {"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}
        return inputs, ids[:, 1:], mask[:, 1:].astype("float32")

    def generate_preprocess(self, texts):
        """Prompts -> right-padded ids and mask, as long as the longest.

        Prompts are not truncated: `generate` rejects one longer than its
        `max_length`.
        """
        rows = self._ids(texts, end=False)
        if not all(rows):
            raise ValueError("A prompt tokenized to no tokens.")
        return dict(
            zip(
                ("token_ids", "padding_mask"),
                self._pad(rows, max(len(r) for r in rows)),
            )
        )

    def generate_postprocess(self, outputs):
        """Generated `{"token_ids", "padding_mask"}` -> strings."""
        ids = np.asarray(outputs["token_ids"])
        mask = np.asarray(outputs["padding_mask"]).astype(bool)
        stop = self.tokenizer.end_token_id
        rows = []
        for row, keep in zip(ids, mask):
            row = row[keep]
            if stop is not None:
                row = row[row != stop]
            rows.append(row.tolist())
        return self.tokenizer.detokenize(rows)

    def get_config(self):
        return {
            "tokenizer": {
                **self.tokenizer.get_config(),
                "tokenizer_json": self.tokenizer.tokenizer_json,
            },
            "sequence_length": self.sequence_length,
            "add_start_token": self.add_start_token,
            "add_end_token": self.add_end_token,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["tokenizer"] = SSMTokenizer(**config["tokenizer"])
        return cls(**config)
