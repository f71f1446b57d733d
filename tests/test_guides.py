"""The guides: keras-io format, fresh notebooks, and each runs in quick mode.

Each guide runs in a subprocess on the current backend with
`KERAS_SSM_QUICK=1` (small data, few epochs) and must write its plots.
"""

import json
import os

import keras
import pytest

from guides import make_notebooks
from tests.helpers import run_python

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUIDES = {
    "getting_started": ["getting_started_accuracy.png"],
    "long_range_arena": ["long_range_arena_listops.png"],
    "forecasting_etth1": ["forecasting_etth1.png"],
    "frequency_bias": [
        "frequency_bias_spectra.png",
        "frequency_bias_continuity.png",
    ],
    "recurrent_inference": ["recurrent_generation.png"],
    "text_generation_mamba": ["text_generation_loss.png"],
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Each guide runs in quick mode under one backend per CI run (the layers it
# uses are tested under all three elsewhere); KERAS_SSM_GUIDES_ALL_BACKENDS=1
# runs every guide under every backend.
GUIDE_BACKEND = {
    "getting_started": "torch",
    "long_range_arena": "torch",
    "forecasting_etth1": "tensorflow",
    "frequency_bias": "torch",
    "recurrent_inference": "tensorflow",
    "text_generation_mamba": "torch",
}


def _guide_path(name, extension=".py"):
    return os.path.join(ROOT, "guides", name + extension)


@pytest.mark.backend_independent
def test_every_guide_is_listed():
    found = {os.path.basename(p)[:-3] for p in make_notebooks.guide_sources()}
    assert found == set(GUIDES) == set(GUIDE_BACKEND)


@pytest.mark.backend_independent
@pytest.mark.parametrize("name", sorted(GUIDES))
def test_guide_follows_keras_io_format(name):
    with open(_guide_path(name)) as f:
        source = f.read()
    cells = make_notebooks.split_cells(source)
    assert cells[0][0] == "markdown"
    header = make_notebooks.parse_header(cells[0][1])
    assert header["Title"] and header["Description"]
    markdown = [text for kind, text in cells if kind == "markdown"]
    assert markdown[1].startswith("## Introduction")
    assert markdown[-1].startswith("## Conclusion")
    assert "KERAS_SSM_QUICK" in source and "KERAS_SSM_GUIDE_OUTPUT" in source
    assert "validation_data=" in source or "validation_split=" in source


@pytest.mark.backend_independent
def test_notebook_generation_splits_markdown_and_code():
    source = '"""\nTitle: T\n"""\n\nx = 1\n\n"""\n## Intro\n\ntext\n"""\n\n'
    source += 'def f():\n    """Docstring stays code."""\n    return 2\n'
    cells = make_notebooks.split_cells(source)
    assert cells == [
        ("markdown", "Title: T"),
        ("code", "x = 1"),
        ("markdown", "## Intro\n\ntext"),
        ("code", 'def f():\n    """Docstring stays code."""\n    return 2'),
    ]
    with pytest.raises(ValueError, match="Author"):
        make_notebooks.parse_header("Title: only a title")


@pytest.mark.backend_independent
@pytest.mark.parametrize("name", sorted(GUIDES))
def test_notebook_is_fresh_and_starts_with_setup(name):
    path = _guide_path(name)
    with open(path[:-3] + ".ipynb") as f:
        text = f.read()
    assert text == make_notebooks.notebook_text(path), (
        "stale notebook: run python guides/make_notebooks.py"
    )
    cells = json.loads(text)["cells"]
    assert cells[0]["cell_type"] == "markdown"
    setup = "".join(cells[1]["source"])
    assert "pip install" in setup and 'os.environ["KERAS_BACKEND"]' in setup


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GUIDES))
def test_guide_runs_in_quick_mode(name, tmp_path):
    backend = keras.backend.backend()
    if backend != GUIDE_BACKEND[name] and not os.environ.get(
        "KERAS_SSM_GUIDES_ALL_BACKENDS"
    ):
        pytest.skip(f"{name} runs under {GUIDE_BACKEND[name]} in CI")
    if name == "forecasting_etth1":
        data = os.environ.get(
            "KERAS_SSM_DATA", os.path.join(ROOT, os.pardir, "shared", "data")
        )
        if not os.path.exists(os.path.join(data, "ETT-small", "ETTh1.csv")):
            pytest.skip("ETTh1.csv not found under KERAS_SSM_DATA")
    env = dict(
        os.environ,
        KERAS_BACKEND=keras.backend.backend(),
        KERAS_SSM_QUICK="1",
        KERAS_SSM_GUIDE_OUTPUT=str(tmp_path),
        MPLBACKEND="Agg",
        PYTHONPATH=ROOT,
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    run_python([_guide_path(name)], env, timeout=900)
    for png in GUIDES[name]:
        with open(os.path.join(str(tmp_path), png), "rb") as f:
            assert f.read(8) == PNG_MAGIC, png
