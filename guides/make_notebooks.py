"""Regenerates the `.ipynb` notebooks of the guides from their `.py` sources.

The guides are keras-io style Python files: a header docstring (Title,
Author, ...), markdown in top-level docstrings and code in between. This
script turns each one into jupytext's percent format, adds a first code cell
that installs keras-ssm and picks the backend (for Colab), and writes the
notebook with jupytext.

Usage:

    python guides/make_notebooks.py            # rewrite guides/*.ipynb
    python guides/make_notebooks.py --check    # exit 1 if any is stale
"""

import argparse
import glob
import os
import sys

import jupytext

GUIDES_DIR = os.path.dirname(os.path.abspath(__file__))
HEADER_FIELDS = (
    "Title",
    "Author",
    "Date created",
    "Last modified",
    "Description",
    "Accelerator",
)
INSTALL_CELL = """\
# Install keras-ssm with the application extras, then pick a backend
# ("jax", "tensorflow" or "torch") before Keras is imported.
!pip install -q "keras-ssm[apps]"
import os

os.environ["KERAS_BACKEND"] = "jax\""""


def guide_sources():
    """Paths of the guide `.py` files (every `.py` here but this script)."""
    paths = sorted(glob.glob(os.path.join(GUIDES_DIR, "*.py")))
    return [p for p in paths if os.path.basename(p) != "make_notebooks.py"]


def split_cells(source):
    """Splits a keras-io guide into `(kind, text)` cells.

    Markdown cells are the top-level triple-quoted strings (opening `\"\"\"`
    at column 0 on its own line); everything else is code.
    """
    cells, code, lines = [], [], source.splitlines()
    i = 0
    while i < len(lines):
        if lines[i] == '"""':
            _flush_code(cells, code)
            end = lines.index('"""', i + 1)
            cells.append(("markdown", "\n".join(lines[i + 1 : end]).strip()))
            i = end + 1
        else:
            code.append(lines[i])
            i += 1
    _flush_code(cells, code)
    return cells


def _flush_code(cells, code):
    text = "\n".join(code).strip("\n")
    if text.strip():
        cells.append(("code", text))
    code.clear()


def parse_header(text):
    """The header docstring as a dict; raises if a field is missing."""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in HEADER_FIELDS:
            fields[key.strip()] = value.strip()
    missing = [f for f in HEADER_FIELDS if f not in fields]
    if missing:
        raise ValueError(f"Guide header lacks the fields {missing}.")
    return fields


def to_notebook(path):
    """The notebook (a `nbformat` node) of the guide at `path`."""
    with open(path) as f:
        cells = split_cells(f.read())
    header = parse_header(cells[0][1])
    title = f"# {header['Title']}\n\n" + "<br>\n".join(
        f"**{key}:** {header[key]}" for key in HEADER_FIELDS[1:]
    )
    cells = [("markdown", title), ("code", INSTALL_CELL)] + cells[1:]
    percent = []
    for kind, text in cells:
        if kind == "markdown":
            body = "\n".join(f"# {line}".rstrip() for line in text.split("\n"))
            percent.append(f"# %% [markdown]\n{body}")
        else:
            percent.append(f"# %%\n{text}")
    notebook = jupytext.reads("\n\n".join(percent) + "\n", fmt="py:percent")
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:02d}"  # stable ids: reproducible files
    notebook.metadata = {
        "colab": {"name": os.path.basename(path)[:-3] + ".ipynb"},
        "kernelspec": {
            "display_name": "Python 3",
            "language": "python",
            "name": "python3",
        },
        "language_info": {"name": "python"},
    }
    return notebook


def notebook_text(path):
    return jupytext.writes(to_notebook(path), fmt="ipynb")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for path in guide_sources():
        target = path[:-3] + ".ipynb"
        text = notebook_text(path)
        current = open(target).read() if os.path.exists(target) else None
        if current == text:
            continue
        if args.check:
            stale.append(os.path.basename(target))
        else:
            with open(target, "w") as f:
                f.write(text)
            print(f"wrote {os.path.relpath(target)}")
    if stale:
        print(f"stale notebooks: {stale}; run python guides/make_notebooks.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
