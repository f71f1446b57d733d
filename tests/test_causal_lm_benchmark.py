"""benchmarks/bench_generate.py runs at a tiny size and writes its rows."""

import json

import pytest

pytest.importorskip("transformers")
pytest.importorskip("keras_hub")

from benchmarks import bench_generate  # noqa: E402

# The same under every backend (each backend runs in its own process).
pytestmark = pytest.mark.backend_independent


def test_parameter_bytes_match_transformers():
    import transformers

    for name, make, config_class in (
        ("mamba", transformers.MambaForCausalLM, transformers.MambaConfig),
        ("mamba2", transformers.Mamba2ForCausalLM, transformers.Mamba2Config),
    ):
        config = bench_generate.model_config(name, quick=True)
        settings = {k: v for k, v in config.items() if k != "model_type"}
        model = make(config_class(**settings))
        assert bench_generate.parameter_bytes(config) == 4 * (
            model.num_parameters()
        )


@pytest.mark.slow
def test_quick_mode_writes_rows_with_ratios(tmp_path):
    output = tmp_path / "generate.json"
    argv = ["--quick", "--models", "mamba", "--backends", "torch,transformers"]
    assert bench_generate.main(argv + ["--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert report["quick"] and len(report["load_average"]) == 3
    rows = report["rows"]
    assert {(r["backend"], r["batch"]) for r in rows} == {
        (backend, batch)
        for backend in ("torch", "transformers")
        for batch in (1, 2)
    }
    for row in rows:
        assert row["tokens_per_second"] > 0
        assert row["prefill_tokens_per_second"] > 0
        assert 0 < row["fraction_of_ceiling"]
    for row in rows:
        if row["backend"] == "transformers":
            assert row["vs_transformers"] == 1.0
