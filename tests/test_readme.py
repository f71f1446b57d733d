"""README.md: the preset table is the registry's."""

import importlib.util
import os

import pytest

from keras_ssm.models import list_presets

# The same under every backend (README tables).
pytestmark = pytest.mark.backend_independent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _table_module():
    path = os.path.join(ROOT, ".ci", "preset_table.py")
    spec = importlib.util.spec_from_file_location("preset_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _readme_rows():
    rows = {}
    for line in _table_module().readme_table().splitlines()[2:]:
        name = line.split("|")[1].strip().strip("`")
        rows[name] = line
    return rows


def _counts(rows):
    return {
        name: int(line.split("|")[4].strip().replace(",", ""))
        for name, line in rows.items()
    }


def test_readme_preset_table_lists_every_preset_as_registered():
    """Names, tasks, models and sources; counts are checked below."""
    rows = _readme_rows()
    assert sorted(rows) == list_presets()
    table = _table_module().table(counts=_counts(rows))
    assert _table_module().readme_table() == table, (
        "README.md's preset table is stale: run python .ci/preset_table.py"
    )


@pytest.mark.parametrize(
    "name", ["s4d_listops_cpu", "etsmlp_gate_listops_cpu", "s4d_etth1_cpu"]
)
def test_readme_parameter_counts_match_the_built_models(name):
    assert _counts(_readme_rows())[name] == (
        _table_module().parameter_count(name)
    )
