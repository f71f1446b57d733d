"""ListOps: nested list operations, generated as in LRA or loaded from TSV.

An expression is a tree whose inner nodes are operators over 2 to
`max_args` arguments and whose leaves are digits 0-9:

    [MAX 2 9 [MIN 4 7 ] 0 ]   ->   9

Operators: `[MIN`, `[MAX`, `[MED` (median, truncated to an integer, as
`int(np.median(args))`) and `[SM` (sum modulo 10). The answer (0-9) is the
label. Following the LRA procedure (Tay et al., 2021, after Nangia and
Bowman, 2018), a node at depth `d < max_depth` is an operator with
probability `VALUE_P = 0.25` and otherwise a digit; trees are drawn until
their token count (operators, digits and closing brackets) lies in
`[min_length, max_length]`. LRA uses `max_depth=10`, `max_args=10`,
lengths 500 to 2000.

Tokens: the LRA source strings also contain parentheses that only show the
binary nesting of the generator; like the reference pipelines, the tokenizer
drops them. Vocabulary: 0 padding, 1 unknown, then the 15 symbols below.
"""

import csv
import os
import random

import numpy as np

from keras_ssm.datasets.limits import check_examples_memory
from keras_ssm.datasets.limits import check_sizes
from keras_ssm.utils.validation import check_class_labels
from keras_ssm.utils.validation import check_int

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
DIGITS = tuple(str(d) for d in range(10))
PAD, UNK = "<pad>", "<unk>"
VOCABULARY = (PAD, UNK) + DIGITS + OPERATORS + (END,)
TOKEN_IDS = {token: i for i, token in enumerate(VOCABULARY)}
VOCAB_SIZE = len(VOCABULARY)
NUM_CLASSES = 10
VALUE_P = 0.25


def apply_operator(operator, values):
    """The value of `operator` applied to a list of digits."""
    if operator == "[MIN":
        return min(values)
    if operator == "[MAX":
        return max(values)
    if operator == "[MED":
        return int(np.median(values))
    if operator == "[SM":
        return sum(values) % 10
    raise ValueError(f"Unknown ListOps operator {operator!r}.")


def _generate_tree(rng, depth, max_depth, max_args, budget):
    """One random tree as a token list and its value; None if too long.

    `budget` is the number of tokens still allowed; generation stops early
    once a tree cannot fit, which keeps rejection sampling cheap.
    """
    if budget < 1:
        return None
    is_operator = depth < max_depth and rng.random() <= VALUE_P
    if not is_operator:
        digit = rng.randrange(10)
        return [DIGITS[digit]], digit
    num_args = rng.randint(2, max_args)
    operator = OPERATORS[rng.randrange(len(OPERATORS))]
    tokens, values = [operator], []
    for _ in range(num_args):
        child = _generate_tree(
            rng, depth + 1, max_depth, max_args, budget - len(tokens) - 1
        )
        if child is None:
            return None
        tokens += child[0]
        values.append(child[1])
    tokens.append(END)
    if len(tokens) > budget:
        return None
    return tokens, apply_operator(operator, values)


def generate_expression(
    rng, min_length=500, max_length=2000, max_depth=10, max_args=10
):
    """Draws trees until one has `min_length..max_length` tokens.

    Args:
        rng: a `random.Random` (Python's Mersenne Twister: fast, and its
            stream for a seed is the same on every platform).
        min_length: smallest accepted token count.
        max_length: largest accepted token count.
        max_depth: depth below which no operator is drawn (root depth 1).
        max_args: largest number of arguments of an operator.

    Returns:
        `(tokens, value)`: a list of token strings and the answer 0-9.
    """
    min_length = check_int("min_length", min_length, minimum=1)
    max_length = check_int("max_length", max_length, minimum=1)
    max_depth = check_int("max_depth", max_depth, minimum=1)
    max_args = check_int("max_args", max_args, minimum=2)
    if not 1 <= min_length <= max_length:
        raise ValueError(
            "Expected 1 <= `min_length` <= `max_length`; got "
            f"min_length={min_length}, max_length={max_length}."
        )
    if max_args < 2 or max_depth < 1:
        raise ValueError(
            f"`max_args` must be >= 2 and `max_depth` >= 1; got "
            f"max_args={max_args}, max_depth={max_depth}."
        )
    while True:
        tree = _generate_tree(rng, 1, max_depth, max_args, max_length)
        if tree is not None and len(tree[0]) >= min_length:
            return tree


def encode(tokens, length=None):
    """Token strings (parentheses dropped) to int32 ids, zero-padded.

    Args:
        tokens: a list of token strings or a whitespace-separated source
            string in the LRA format.
        length: pad or truncate to this many ids (None: no padding).
    """
    if isinstance(tokens, str):
        tokens = tokens.split()
    ids = [TOKEN_IDS.get(t, 1) for t in tokens if t not in ("(", ")")]
    if length is not None:
        ids = ids[:length] + [0] * max(0, length - len(ids))
    return np.asarray(ids, dtype="int32")


def generate_listops(
    num_examples,
    seed=0,
    min_length=500,
    max_length=2000,
    max_depth=10,
    max_args=10,
    balanced=True,
    progress=False,
):
    """A generated ListOps data set, deterministic under `seed`.

    Args:
        num_examples: number of expressions.
        seed: seed of the `random.Random` generator; the same seed and
            arguments give the same data on every machine.
        min_length: smallest token count (LRA: 500).
        max_length: largest token count and the padded length (LRA: 2000).
        max_depth: maximum tree depth (LRA: 10).
        max_args: maximum arguments per operator (LRA: 10).
        balanced: draw until every answer 0-9 has `num_examples / 10`
            examples (rounded), so that chance accuracy is exactly 10%.
            LRA's release is not balanced; `False` keeps its natural label
            frequencies.
        progress: show a tqdm progress bar.

    Returns:
        `(tokens, labels)`: int32 arrays of shape (num_examples, max_length)
        (0-padded) and (num_examples,).

    Example:

    >>> x, y = generate_listops(100, seed=1, min_length=20, max_length=100)
    >>> x.shape, y.shape
    ((100, 100), (100,))
    """
    num_examples = check_int("num_examples", num_examples, minimum=1)
    max_length = check_int("max_length", max_length, minimum=1)
    check_examples_memory(
        "ListOps",
        {"num_examples": num_examples},
        (max_length + 1) * 4,
        max_length=max_length,
    )
    rng = random.Random(seed)
    quota = None
    if balanced:
        base, extra = divmod(num_examples, NUM_CLASSES)
        quota = [base + (1 if c < extra else 0) for c in range(NUM_CLASSES)]
    tokens = np.zeros((num_examples, max_length), dtype="int32")
    labels = np.zeros((num_examples,), dtype="int32")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=num_examples, desc="ListOps", unit="expr")
    count = 0
    while count < num_examples:
        expression, value = generate_expression(
            rng, min_length, max_length, max_depth, max_args
        )
        if quota is not None:
            if quota[value] == 0:
                continue
            quota[value] -= 1
        tokens[count] = encode(expression, max_length)
        labels[count] = value
        count += 1
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return tokens, labels


def decode(ids):
    """Token ids back to a space-separated expression (padding dropped)."""
    return " ".join(VOCABULARY[int(i)] for i in ids if int(i) != 0)


def to_lra_source(tokens):
    """Token strings to the LRA TSV source format (with parentheses).

    The LRA generator nests an operator's arguments as binary pairs
    `((((op, a1), a2), ...), "]")` and prints each pair in parentheses;
    dropping the parentheses gives back `tokens`.
    """

    def subtree(i):
        if tokens[i] not in OPERATORS:
            return tokens[i], i + 1
        operator, i = tokens[i], i + 1
        args = []
        while tokens[i] != END:
            arg, i = subtree(i)
            args.append(arg)
        text = f"( {operator} {args[0]} )"
        for arg in args[1:]:
            text = f"( {text} {arg} )"
        return f"( {text} {END} )", i + 1

    return subtree(0)[0]


def save_tsv(path, tokens, labels):
    """Writes encoded examples as an LRA-style TSV (`Source`, `Target`)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["Source", "Target"])
        for ids, label in zip(tokens, labels):
            source = to_lra_source(decode(ids).split())
            writer.writerow([source, int(label)])


def load_tsv(path, length=2000):
    """Reads an LRA ListOps TSV file (`basic_train.tsv`, ...).

    Args:
        path: a TSV file with a header row `Source	Target`.
        length: padded/truncated token length (LRA: 2000).

    Returns:
        `(tokens, labels)` int32 arrays.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"ListOps TSV file {path} not found. The LRA release "
            "(https://storage.googleapis.com/long-range-arena/lra_release.gz)"
            " has it under lra_release/listops-1000/."
        )
    tokens, labels = [], []
    with open(path, newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        if [h.strip() for h in header[:2]] != ["Source", "Target"]:
            raise ValueError(
                f"{path}: expected the header 'Source\\tTarget'; got "
                f"{header!r}."
            )
        for row in reader:
            tokens.append(encode(row[0], length))
            labels.append(int(row[1]))
    if not labels:
        raise ValueError(f"{path} holds no examples (only its header).")
    labels = np.asarray(labels, dtype="int32")
    check_class_labels(f"The labels of {path}", labels, NUM_CLASSES)
    return np.stack(tokens), labels


def load_release(directory, length=2000):
    """Loads `basic_{train,val,test}.tsv` of the LRA release directory.

    Returns:
        `{"train": (x, y), "validation": (x, y), "test": (x, y)}`.
    """
    splits = {"train": "train", "validation": "val", "test": "test"}
    return {
        split: load_tsv(os.path.join(directory, f"basic_{name}.tsv"), length)
        for split, name in splits.items()
    }


def load_data(
    num_train=4000,
    num_validation=400,
    num_test=1000,
    min_length=10,
    max_length=64,
    max_depth=10,
    max_args=10,
    seed=0,
    directory=None,
    progress=False,
):
    """ListOps splits, generated with the LRA procedure (or the LRA TSVs).

    Generation is seeded (split i uses seed `3 * seed + i`, so the splits
    are independent streams) and cached under the cache directory
    (`$KERAS_SSM_CACHE`, by default `~/.keras/datasets/keras_ssm`); it
    needs no network. The defaults are small (seconds to generate); the
    `*_listops_cpu` presets take 16000 training expressions of 10 to 64
    tokens, the `*_listops_paper` presets the LRA sizes (96000 / 2000 /
    2000 expressions of 500 to 2000 tokens).

    Args:
        num_train: training expressions.
        num_validation: validation expressions.
        num_test: test expressions.
        min_length: shortest expression, in tokens.
        max_length: longest expression; also the padded length.
        max_depth: deepest operator nesting.
        max_args: most arguments per operator.
        seed: seed of the generator.
        directory: a released LRA folder of `basic_{train,val,test}.tsv` to
            read instead of generating (sizes and lengths other than
            `max_length` are then the release's).
        progress: show a tqdm bar while generating.

    Returns:
        `(x_train, y_train), (x_val, y_val), (x_test, y_test)`: int32 token
        ids (n, max_length), 0 being padding, and int32 labels 0-9.

    Example:

    >>> (x_train, y_train), _, _ = load_data(
    ...     num_train=8, num_validation=2, num_test=2, max_length=32)
    >>> x_train.shape, x_train.dtype.name
    ((8, 32), 'int32')
    """
    from keras_ssm.datasets.generated import as_tuples
    from keras_ssm.datasets.generated import generate_splits

    max_length = check_int("max_length", max_length, minimum=1)
    if directory:
        return as_tuples(load_release(directory, max_length))
    sizes = check_sizes(
        num_train=num_train, num_validation=num_validation, num_test=num_test
    )
    check_examples_memory(
        "ListOps", sizes, (max_length + 1) * 4, max_length=max_length
    )
    params = {
        "min_length": check_int("min_length", min_length, minimum=1),
        "max_length": max_length,
        "max_depth": check_int("max_depth", max_depth, minimum=1),
        "max_args": check_int("max_args", max_args, minimum=2),
    }
    splits = generate_splits(
        "listops",
        generate_listops,
        params,
        sizes=sizes.values(),
        seed=check_int("seed", seed),
        example_shape=(max_length,),
        num_classes=NUM_CLASSES,
        progress=progress,
    )
    return as_tuples(splits)
