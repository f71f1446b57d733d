"""Generation throughput of `SSMCausalLM` against transformers' `generate`.

At the real mamba-130m and mamba2-130m configurations (random weights,
the checkpoints' shapes), for batch sizes 1 and 8, a 64-token prompt and
128 new tokens, greedy, it measures:

- decoding throughput: new tokens per second of `generate`
  (batch x new tokens / wall time, prefill included);
- prefill throughput: prompt tokens per second of the parallel form alone.

Each of our backends runs in its own process (the backend is fixed when
Keras is imported), and transformers' cached `generate` (PyTorch, its
reference CPU path) runs in the same invocation on the same CPU, so the
ratios compare like with like. At batch 1 decoding is memory-bound: each
token reads every float32 weight once, so `--bandwidth` GB/s gives a
ceiling of bandwidth / weight bytes tokens per second, and each figure is
also reported as a fraction of it.

Usage:

    python benchmarks/bench_generate.py                  # full size
    python benchmarks/bench_generate.py --models mamba --batches 8 \
        --backends jax,torch,transformers
    python benchmarks/bench_generate.py --quick           # seconds (smoke)

Prints a table and writes `benchmarks/results/generate.json` (or
`--output`).
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.harness import run_worker  # noqa: E402
from benchmarks.harness import time_call  # noqa: E402

# transformers configurations of state-spaces/mamba-130m-hf and of
# mamba2-130m (GPT-NeoX vocabulary padded to a multiple of 16).
CONFIGS = {
    "mamba": {
        "model_type": "mamba",
        "vocab_size": 50280,
        "hidden_size": 768,
        "num_hidden_layers": 24,
        "state_size": 16,
        "conv_kernel": 4,
        "expand": 2,
        "time_step_rank": 48,
        "tie_word_embeddings": True,
    },
    "mamba2": {
        "model_type": "mamba2",
        "vocab_size": 50288,
        "hidden_size": 768,
        "num_hidden_layers": 24,
        "state_size": 128,
        "conv_kernel": 4,
        "expand": 2,
        "head_dim": 64,
        "num_heads": 24,
        "n_groups": 1,
        "chunk_size": 256,
        "tie_word_embeddings": True,
    },
}
QUICK_OVERRIDES = {
    "vocab_size": 64,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "time_step_rank": 2,
    "state_size": 8,
    "head_dim": 8,
    "num_heads": 4,
    "chunk_size": 8,
}
BACKENDS = ("jax", "tensorflow", "torch", "transformers")


def model_config(name, quick):
    config = dict(CONFIGS[name])
    if quick:
        config.update({k: v for k, v in QUICK_OVERRIDES.items() if k in config})
    return config


def _prompts(config, batch, prompt_length, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = config["vocab_size"]
    return rng.integers(1, vocab, (batch, prompt_length)).astype("int32")


def _best(function, repeats):
    """The shortest of `repeats` timed calls (after one warm-up call)."""
    return time_call(function, repeats, warmup=1, statistic="min")


def run_ours(config, batch, prompt_length, new_tokens, repeats):
    """(seconds of generate, seconds of prefill) with keras-ssm."""
    import keras
    import numpy as np

    from keras_ssm.models import SSMCausalLM
    from keras_ssm.models import SSMCausalLMBackbone
    from keras_ssm.models.hf_checkpoint import backbone_config

    keras.utils.set_random_seed(0)
    lm = SSMCausalLM(SSMCausalLMBackbone(**backbone_config(config)))
    lm.compile(sampler="greedy")
    ids = _prompts(config, batch, prompt_length)
    inputs = {"token_ids": ids, "padding_mask": np.ones(ids.shape, bool)}
    total = prompt_length + new_tokens

    def generate():
        lm.generate(inputs, max_length=total, stop_token_ids=None)

    backbone = lm.backbone
    mask = keras.ops.ones(ids.shape, "bool")
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def pure(variables, token_ids, mask):
            mapping = zip(backbone.variables, variables)
            with keras.StatelessScope(state_mapping=mapping):
                hidden, state = backbone.prefill(token_ids, mask, ids.shape[1])
                return backbone.logits(hidden[:, -1]), state

        compiled = jax.jit(pure)

        def prefill():
            values = [v.value for v in backbone.variables]
            jax.block_until_ready(compiled(values, ids, mask))

    elif backend == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(
            lambda token_ids, mask: backbone.prefill(
                token_ids, mask, ids.shape[1]
            ),
            jit_compile=True,
        )

        def prefill():
            keras.ops.convert_to_numpy(compiled(ids, mask)[0])

    else:
        import torch

        def prefill():
            with torch.no_grad():
                hidden, _ = backbone.prefill(ids, mask, ids.shape[1])
                keras.ops.convert_to_numpy(backbone.logits(hidden[:, -1]))

    return _best(generate, repeats), _best(prefill, repeats)


def run_transformers(config, batch, prompt_length, new_tokens, repeats):
    """(seconds of generate, seconds of prefill) with transformers."""
    import torch
    import transformers

    torch.manual_seed(0)
    kind = config["model_type"]
    settings = {k: v for k, v in config.items() if k != "model_type"}
    if kind == "mamba":
        model = transformers.MambaForCausalLM(
            transformers.MambaConfig(**settings)
        )
    else:
        model = transformers.Mamba2ForCausalLM(
            transformers.Mamba2Config(**settings)
        )
    model.eval()
    model.generation_config.eos_token_id = None
    ids = torch.tensor(_prompts(config, batch, prompt_length)).long()

    def generate():
        with torch.no_grad():
            model.generate(
                ids,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                use_cache=True,
                pad_token_id=0,
            )

    def prefill():
        with torch.no_grad():
            model(ids, use_cache=True)

    return _best(generate, repeats), _best(prefill, repeats)


def parameter_bytes(config):
    """float32 bytes of the model's weights (what one decoding step reads)."""
    from keras_ssm.models.hf_checkpoint import backbone_config

    settings = backbone_config(config)
    hidden, vocab = settings["hidden_dim"], settings["vocabulary_size"]
    block = settings["block_config"]
    inner, n, k = block["intermediate_dim"], block["d_state"], block["d_conv"]
    if settings["block_type"] == "mamba":
        rank = block["dt_rank"]
        per_layer = (
            hidden * 2 * inner
            + inner * (k + 1)
            + inner * (rank + 2 * n)
            + rank * inner
            + inner * (2 + n)
            + inner * hidden
            + hidden
        )
    else:
        heads = inner // block["headdim"]
        conv_dim = inner + 2 * block["ngroups"] * n
        per_layer = (
            hidden * (inner + conv_dim + heads)
            + conv_dim * (k + 1)
            + 3 * heads
            + inner
            + inner * hidden
            + hidden
        )
    return 4 * (vocab * hidden + settings["num_layers"] * per_layer + hidden)


def worker(args):
    """One backend, one model, every batch size: prints one JSON line."""
    config = model_config(args.models[0], args.quick)
    run = run_transformers if args.backend == "transformers" else run_ours
    for batch in args.batches:
        gen, pre = run(config, batch, args.prompt, args.new, args.repeats)
        row = {
            "model": args.models[0],
            "backend": args.backend,
            "batch": batch,
            "generate_seconds": gen,
            "tokens_per_second": batch * args.new / gen,
            "prefill_seconds": pre,
            "prefill_tokens_per_second": batch * args.prompt / pre,
        }
        print("ROW " + json.dumps(row), flush=True)


def _spawn(args, model, backend):
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        "--backend",
        backend,
        "--models",
        model,
        "--batches",
        *map(str, args.batches),
        "--prompt",
        str(args.prompt),
        "--new",
        str(args.new),
        "--repeats",
        str(args.repeats),
    ] + (["--quick"] if args.quick else [])
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "torch" if backend == "transformers" else backend
    rows, failed, error = run_worker(command, env, prefix="ROW ")
    if failed or not rows:
        raise RuntimeError(
            f"{backend} / {model} failed: {error.strip() or 'no output'}"
        )
    return rows


def add_ratios(rows, bandwidth):
    """Ratio to transformers (same model and batch) and to the ceiling."""
    reference = {
        (r["model"], r["batch"]): r
        for r in rows
        if r["backend"] == "transformers"
    }
    for row in rows:
        ref = reference.get((row["model"], row["batch"]))
        if ref is not None:
            row["vs_transformers"] = (
                row["tokens_per_second"] / ref["tokens_per_second"]
            )
            row["prefill_vs_transformers"] = (
                row["prefill_tokens_per_second"]
                / ref["prefill_tokens_per_second"]
            )
        ceiling = bandwidth * 1e9 / row["weight_bytes"]
        # At batch B one weight read serves B tokens.
        row["fraction_of_ceiling"] = row["tokens_per_second"] / (
            row["batch"] * ceiling
        )
    return rows


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="mamba,mamba2")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--bandwidth",
        type=float,
        default=24.0,
        help="memory bandwidth in GB/s for the batch-1 ceiling",
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--backend", choices=BACKENDS)
    args = parser.parse_args(argv)
    args.models = args.models.split(",")
    for name in args.models:
        if name not in CONFIGS:
            parser.error(f"unknown model {name!r}; choose from {list(CONFIGS)}")
    backends = args.backends.split(",")
    for name in backends:
        if name not in BACKENDS:
            parser.error(f"unknown backend {name!r}; choose from {BACKENDS}")
    args.backends = backends
    if args.quick:
        args.batches = [1, 2]
        args.prompt, args.new, args.repeats = 8, 4, 1
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        worker(args)
        return 0
    rows = []
    for model in args.models:
        weight_bytes = parameter_bytes(model_config(model, args.quick))
        for backend in args.backends:
            for row in _spawn(args, model, backend):
                row["weight_bytes"] = weight_bytes
                rows.append(row)
    add_ratios(rows, args.bandwidth)
    columns = [
        "model",
        "backend",
        "batch",
        "tokens_per_second",
        "vs_transformers",
        "fraction_of_ceiling",
        "prefill_tokens_per_second",
        "prefill_vs_transformers",
    ]
    print(" | ".join(columns))
    for row in rows:
        print(
            " | ".join(
                f"{row.get(c):.3g}"
                if isinstance(row.get(c), float)
                else str(row.get(c, "-"))
                for c in columns
            )
        )
    output = args.output or os.path.join(
        ROOT, "benchmarks", "results", "generate.json"
    )
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "quick": args.quick,
        "prompt_tokens": args.prompt,
        "new_tokens": args.new,
        "bandwidth_gb_s": args.bandwidth,
        # Timings on a shared machine are only as good as its idleness.
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    partial = output + ".partial"
    with open(partial, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(partial, output)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
