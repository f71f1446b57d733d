"""Writes the preset table of README.md from the preset registry.

    python .ci/preset_table.py            # rewrite the table in README.md
    python .ci/preset_table.py --check    # exit 1 if README.md is stale

The table sits between the `<!-- presets -->` and `<!-- /presets -->`
markers. Parameter counts come from building each preset's model.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- presets -->", "<!-- /presets -->"


def architecture(entry):
    """A short description of a preset's model."""
    model = entry["model"]
    config = model["config"]
    if "backbone" in config:
        backbone = config["backbone"]
        return (
            f"{model['class']}: {backbone['num_layers']} x "
            f"{backbone['block_type']}, width {backbone['hidden_dim']}"
        )
    return (
        f"{model['class']}: {config['num_layers']} layers, width "
        f"{config['hidden_dim']}"
    )


def parameter_count(name):
    from keras_ssm.models import from_preset

    return from_preset(name).count_params()


def row(name, count=None):
    from keras_ssm.presets import get_preset

    entry = get_preset(name)
    count = parameter_count(name) if count is None else count
    return (
        f"| `{name}` | {entry['task']} | {architecture(entry)} | "
        f"{count:,} | {entry['source']} |"
    )


def table(counts=None):
    """The markdown table; `counts` maps names to known parameter counts."""
    from keras_ssm.presets import list_presets

    counts = counts or {}
    lines = [
        "| Preset | Task | Model | Parameters | Source |",
        "|---|---|---|---:|---|",
    ]
    lines += [row(name, counts.get(name)) for name in list_presets()]
    return "\n".join(lines)


def readme_table(text=None):
    """The table currently in README.md."""
    if text is None:
        with open(README) as f:
            text = f.read()
    start = text.index(BEGIN) + len(BEGIN)
    return text[start : text.index(END)].strip()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    fresh = table()
    with open(README) as f:
        text = f.read()
    if args.check:
        if readme_table(text) != fresh:
            print("README.md's preset table is stale; run this script.")
            return 1
        return 0
    start = text.index(BEGIN) + len(BEGIN)
    text = text[:start] + "\n" + fresh + "\n" + text[text.index(END) :]
    with open(README, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.exit(main())
