"""The experiment suite: statistics, outputs and each `--quick` mode."""

import json
import math
import os

import numpy as np
import pytest

from applications.experiments import common
from tests.helpers import rotated

DATA = os.environ.get("KERAS_SSM_DATA", "/work/shared/data")
HAS_FASHION = os.path.isdir(os.path.join(DATA, "fashion-mnist"))
HAS_ETT = os.path.isfile(os.path.join(DATA, "ETT-small", "ETTh1.csv"))
needs_fashion = pytest.mark.skipif(
    not HAS_FASHION, reason=f"no fashion-mnist under KERAS_SSM_DATA={DATA}"
)
needs_ett = pytest.mark.skipif(
    not HAS_ETT, reason=f"no ETTh1 under KERAS_SSM_DATA={DATA}"
)


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    """A private cache; the shared data directory where it exists."""
    monkeypatch.setenv("KERAS_SSM_CACHE", str(tmp_path / "cache"))
    if os.path.isdir(DATA):
        monkeypatch.setenv("KERAS_SSM_DATA", DATA)
    return tmp_path


def numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def check_outputs(output_dir):
    """The three files exist and are well formed; returns the JSON."""
    for name in common.OUTPUT_FILES:
        path = os.path.join(output_dir, name)
        assert os.path.getsize(path) > 0, name
    with open(os.path.join(output_dir, "result.json")) as f:
        result = json.load(f)
    assert all(math.isfinite(v) for v in numbers(result))
    env = result["environment"]
    for key in ("date", "platform", "cpu_count", "backend", "command"):
        assert env[key], key
    assert result["verdicts"]
    assert all(item["verdict"] for item in result["verdicts"])
    with open(os.path.join(output_dir, "result.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(output_dir, "result.md")) as f:
        assert "## Verdicts" in f.read()
    return result


def run_quick(tmp_path, name, *argv, module=None):
    """Runs experiment `module` (default `name`) in `--quick` mode.

    Returns the checked `result.json`.
    """
    import importlib

    experiment = importlib.import_module(
        f"applications.experiments.{module or name}"
    )
    out = tmp_path / name
    experiment.main(["--quick", *argv, "--output-dir", str(out)])
    return check_outputs(out)


@pytest.mark.backend_independent
def test_summarize_mean_and_sample_std():
    stat = common.summarize([1.0, 2.0, 4.0])
    assert stat["mean"] == pytest.approx(7 / 3)
    assert stat["std"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert common.summarize([5.0])["std"] == 0.0
    with pytest.raises(ValueError, match="finite"):
        common.summarize([1.0, float("nan")])
    with pytest.raises(ValueError, match="at least one"):
        common.summarize([])


@pytest.mark.backend_independent
def test_compare_needs_difference_beyond_spread():
    a = common.summarize([0.70, 0.72, 0.74])
    b = common.summarize([0.60, 0.62, 0.64])
    assert common.compare(a, b)["holds"]
    assert not common.compare(b, a)["holds"]
    assert "opposite" in common.compare(b, a)["verdict"]
    assert common.compare(b, a, higher_is_better=False)["holds"]
    wide = common.summarize([0.5, 0.7, 0.9])
    result = common.compare(wide, b)
    assert not result["holds"]
    assert result["spread"] == pytest.approx(math.hypot(0.2, 0.02))
    assert (
        "not evidence"
        in common.compare(common.summarize([1.0]), common.summarize([0.0]))[
            "verdict"
        ]
    )
    tiny = common.compare(
        common.summarize([1.0 + 1e-9]),
        common.summarize([1.0]),
        min_difference=1e-6,
    )
    assert "no effect" in tiny["verdict"]


@pytest.mark.backend_independent
def test_parse_args_defaults():
    args = common.parse_args("x", "d", [])
    assert args.seeds == [0, 1, 2] and not args.quick
    assert args.output_dir == os.path.join("runs", "experiments", "x")
    assert common.parse_args("x", "d", ["--quick"]).seeds == [0]
    with pytest.raises(SystemExit):
        common.parse_args("x", "d", ["--seeds", "1", "1"])


@pytest.mark.backend_independent
def test_write_outputs_requires_verdicts(tmp_path):
    with pytest.raises(ValueError, match="verdicts"):
        common.write_outputs(
            tmp_path, "t", {"environment": {}}, [], lambda fig: None
        )


@pytest.mark.backend_independent
def test_not_measured_names_the_reason():
    verdict = common.not_measured("claim", "no data under /x")
    assert verdict == {
        "claim": "claim",
        "verdict": "not measured: no data under /x",
    }


def square_and_cores(x):
    """A pool task: x squared, the cores this process may run on and, under
    torch, its thread count."""
    threads = None
    if os.environ.get("KERAS_BACKEND") == "torch":
        import torch

        threads = torch.get_num_threads()
    return x * x, sorted(os.sched_getaffinity(0)), threads


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here"
)
def test_map_runs_keeps_order_and_pins_each_worker():
    calls = [(x,) for x in range(5)]
    assert common.map_runs(square_and_cores, calls)[3][0] == 9
    results = common.map_runs(square_and_cores, calls, jobs=2)
    assert [r[0] for r in results] == [x * x for x in range(5)]
    available = sorted(os.sched_getaffinity(0))
    for _, cores, threads in results:
        assert len(cores) == 1 and cores[0] in available
        # Pinned before the backend was imported: one thread on one core.
        assert threads in (None, 1)
    with pytest.raises(ValueError, match="jobs"):
        common.map_runs(square_and_cores, calls, jobs=0)
    with pytest.raises(SystemExit):
        common.parse_args(
            "x",
            "d",
            ["--jobs", "0"],
            common.add_jobs_argument,
        )


def test_continuity_laws_quick_model_and_task(data_env):
    result = run_quick(data_env, "continuity_laws", "--skip", "subsampling")
    s4d = result["model_continuity"]["models"]["S4D"]["rel_rmse"]
    # S4D is linear: the relative error is the same at every amplitude.
    coarse = [row[0]["mean"] for row in s4d]
    np.testing.assert_allclose(coarse, coarse[0], rtol=1e-3)
    assert coarse[0] > 0
    assert all(row[-1]["mean"] == 0 for row in s4d)  # finest vs itself
    ces = result["model_continuity"]["models"]["CES"]["rel_rmse"]
    assert ces[1][0]["mean"] > ces[1][-2]["mean"]  # refinement converges
    tasks = result["task_continuity"]
    assert "continuity" in tasks["ListOps (token ids)"]
    if HAS_ETT:
        assert tasks["ETTh1 (OT, 96-step windows)"]["continuity"] > 0.5
    for entry in tasks.values():
        if "continuity" in entry:
            assert entry["continuity"] <= 1.0


@pytest.mark.slow
@needs_fashion
@rotated(0)
def test_continuity_laws_quick_subsampling(data_env):
    result = run_quick(data_env, "continuity_laws", "--skip", "model", "task")
    models = result["subsampling"]["models"]
    assert set(models) == {"s4d", "mamba"}
    for cells in models.values():
        assert set(cells) == {"1", "2", "4"}
        assert all(0 <= c["mean"] <= 1 for c in cells.values())


@pytest.mark.slow
@rotated(1)
def test_listops_main_job_quick(data_env):
    # Two runs in two worker processes: the pool path end to end.
    argv = ["--models", "s4d", "etsmlp", "--jobs", "2"]
    result = run_quick(data_env, "listops_main_job", *argv)
    assert set(result["summary"]) == {"s4d", "etsmlp"}
    assert [r["model"] for r in result["runs"]] == ["s4d", "etsmlp"]
    for model in ("s4d", "etsmlp"):
        acc = result["summary"][model]["test_accuracy"]
        assert 0 <= acc["mean"] <= 1 and acc["n"] == 1
    claims = [v["claim"] for v in result["verdicts"]]
    assert any("reaches 60%" in c for c in claims)
    assert any("beats etsmlp" in c for c in claims)


@pytest.mark.slow
@rotated(2)
def test_lipschitz_sign_quick(data_env):
    result = run_quick(data_env, "lipschitz_sign", "--tasks", "listops")
    assert set(result["summary"]) == {"listops"}
    check_lipschitz_cells(result["summary"]["listops"], "test_accuracy")
    check_lipschitz_runs(result)
    claims = [v["claim"] for v in result["verdicts"]]
    assert len(claims) == 4 and all("listops" in c for c in claims)


def check_lipschitz_cells(summary, metric):
    assert set(summary) == {"transformer", "s4d"}
    for cells in summary.values():
        assert set(cells) == {"-1", "+0", "+1"}
        assert cells["+0"]["penalty_over_task_loss"]["mean"] == 0
        assert cells["+1"]["penalty_over_task_loss"]["mean"] > 0
        assert all(cell[metric]["n"] == 1 for cell in cells.values())


def check_lipschitz_runs(result, rel=0.2):
    # Selection (2 signs x 1 magnitude) and lambda = 0, per model: the
    # selection run is seed 0's run at the chosen lambda.
    assert len(result["runs"]) == 2 * 3
    for run in result["runs"]:
        assert not run["diverged"]
        reading = run["frequency"]
        # L_Lip / power is E_p[4 sin^2(pi xi)] up to the wrap-around step.
        assert reading["penalty_over_power"] == pytest.approx(
            reading["E_4sin2"], rel=rel
        )
        assert reading["E_4sin2"] <= reading["four_pi2_E_xi2"]


@pytest.mark.slow
@needs_ett
@rotated(0)
def test_lipschitz_sign_etth1_quick(data_env):
    result = run_quick(
        data_env,
        "lipschitz_sign_etth1",
        "--tasks",
        "etth1",
        module="lipschitz_sign",
    )
    assert set(result["summary"]) == {"etth1_h8"}
    cells = result["summary"]["etth1_h8"]
    check_lipschitz_cells(cells, "test_mse")
    for model_cells in cells.values():
        for cell in model_cells.values():
            assert cell["test_mse"]["mean"] > 0
            assert cell["test_mae"]["mean"] > 0
    # A window minus its last value ends at 0 and starts away from it: the
    # wrap-around step of the circular reading is large in short windows.
    check_lipschitz_runs(result, rel=0.5)
    assert result["etth1"]["horizons"] == [8]
    assert "window" in result["etth1"]["protocol_differences"]
    with open(data_env / "lipschitz_sign_etth1" / "result.md") as f:
        table = f.read()
    # The poster has no horizon 8: no poster rows in the quick table.
    assert "(poster)" not in table
    from applications.experiments import lipschitz_sign

    rows = lipschitz_sign.poster_rows(168)
    assert [r[0] for r in rows] == [
        "Transformer (poster)",
        "Transformer + Lip (poster)",
        "Informer (poster)",
        "Informer + Lip (poster)",
    ]
    # Two worker processes (each building its own data, one thread each)
    # choose the same lambdas and train to the same numbers, up to float32
    # rounding of a different thread count.
    parallel = run_quick(
        data_env,
        "lipschitz_sign_etth1_jobs",
        "--tasks",
        "etth1",
        "--jobs",
        "2",
        module="lipschitz_sign",
    )
    for model, model_cells in result["summary"]["etth1_h8"].items():
        assert list(parallel["summary"]["etth1_h8"][model]) == list(model_cells)
    mine, theirs = (
        list(numbers(parallel["summary"])),
        list(numbers(result["summary"])),
    )
    assert len(mine) == len(theirs)
    np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("model_name", ["transformer", "s4d"])
def test_lipschitz_forecaster_embeddings_are_the_penalty_input(model_name):
    import keras
    from keras import ops

    from applications.experiments import lipschitz_sign

    setup = {"input_size": 16, "horizon": 4, "quick": True}
    model = lipschitz_sign.build_forecaster(model_name, 0.5, setup)
    x = np.random.default_rng(0).normal(size=(3, 16, 1)).astype("float32")
    model(ops.convert_to_tensor(x))
    added = float(ops.convert_to_numpy(keras.ops.sum(model.losses)))
    embeddings = lipschitz_sign.forecaster_embeddings(model, x)
    assert embeddings.shape == (3, 16, 8)
    measured = lipschitz_sign.measure_embeddings(0.5, 1.0, embeddings)
    # The readout sees what the regularizer sees: 0.5 * L_Lip.
    assert measured["penalty_over_task_loss"] == pytest.approx(added, rel=1e-4)
    unregularised = lipschitz_sign.build_forecaster(model_name, 0.0, setup)
    assert lipschitz_sign.forecaster_embeddings(unregularised, x).shape == (
        3,
        16,
        8,
    )


@pytest.mark.backend_independent
def test_lipschitz_diverged_run_has_no_reading():
    from applications.experiments import lipschitz_sign

    x = np.zeros((2, 5, 3))
    x[0, 2, 1] = np.inf
    measured = lipschitz_sign.measure_embeddings(1.0, 0.3, x)
    assert measured["frequency"] is None
    assert measured["penalty_over_task_loss"] is None
    assert (
        lipschitz_sign.measure_embeddings(1.0, float("nan"), x[1:])["penalty"]
        is None
    )


@pytest.mark.backend_independent
def test_frequency_reading_matches_formula():
    from applications.experiments.lipschitz_sign import frequency_reading

    t = np.arange(256)
    x = np.sin(2 * np.pi * 4 * t / 256)[None, :, None]  # xi = 4 / 256
    reading = frequency_reading(x)
    xi = 4 / 256
    assert reading["four_pi2_E_xi2"] == pytest.approx(4 * np.pi**2 * xi**2)
    assert reading["E_4sin2"] == pytest.approx(4 * np.sin(np.pi * xi) ** 2)
    assert reading["penalty_over_power"] == pytest.approx(
        reading["E_4sin2"], rel=0.02
    )


@pytest.mark.slow
@rotated(1)
def test_etsmlp_ablations_quick(data_env):
    result = run_quick(data_env, "etsmlp_ablations")
    cells = result["summary"]["listops"]
    from applications.experiments import etsmlp_ablations

    assert set(cells) == set(etsmlp_ablations.VARIANTS)
    assert cells["ETSMLP real field"]["block_kwargs"] == {"complex": False}
    # The real field drops the imaginary parameters.
    assert (
        cells["ETSMLP real field"]["num_parameters"]
        < cells["ETSMLP"]["num_parameters"]
    )
    target = cells["ETSMLP"]["num_parameters"]
    for name in ("ETSMLP-Gate (matched)", "S4D (matched)"):
        assert abs(cells[name]["num_parameters"] - target) < 0.3 * target
    # Each Table 3 ablation removes its weights (alpha and beta: 2 per
    # channel and direction; omega: 1 per channel).
    for name, kwargs in (
        ("ETSMLP without alpha", {"use_alpha": False}),
        ("ETSMLP without beta", {"use_beta": False}),
        ("ETSMLP without omega", {"use_omega": False}),
    ):
        assert cells[name]["block_kwargs"] == kwargs
        assert cells[name]["num_parameters"] < target
        assert math.isfinite(cells[name]["test_accuracy"]["mean"])
    claims = " ".join(v["claim"] for v in result["verdicts"])
    assert "without alpha" in claims and "without omega" in claims
    for name in ("without alpha", "without beta", "without omega"):
        assert f"beats ETSMLP {name}" in claims
    assert "not available" not in json.dumps(result)
    assert result["paper_table_3_listops"]["ETSMLP without beta"] == 56.05


@pytest.mark.backend_independent
def test_frequency_bias_band_energy_and_noise():
    from applications.experiments import frequency_bias as fb

    rng = np.random.default_rng(0)
    low, high = fb.sinusoid_noise(3, rng)
    assert low.shape == high.shape == (3, fb.LENGTH)
    # A unit sinusoid on an rfft bin has |X|^2 = (L / 2)^2 at that bin.
    energy = (fb.LENGTH / 2) ** 2
    assert fb.band_energy(low, fb.LOW_FREQUENCY) == pytest.approx(energy)
    assert fb.band_energy(high, fb.HIGH_FREQUENCY) == pytest.approx(energy)
    assert fb.band_energy(low, fb.HIGH_FREQUENCY) < 1e-9 * energy
    assert fb.band_energy(high, fb.LOW_FREQUENCY) < 1e-9 * energy
    with pytest.raises(ValueError, match="outside"):
        fb.band_energy(low, fb.LENGTH)
    images = np.arange(2 * 784, dtype="float32").reshape(2, 784, 1)
    small = fb.downsample(images)
    assert small.shape == (2, fb.LENGTH, 1)
    # The first output pixel is the mean of pixels (0, 0), (0, 1), (1, 0)
    # and (1, 1) of the 28 x 28 image: 0, 1, 28 and 29.
    assert small[0, 0, 0] == pytest.approx(14.5)


@pytest.mark.backend_independent
def test_frequency_bias_index_sign():
    from applications.experiments.frequency_bias import bias_index

    curve = {
        "step": [0, 10, 20, 30, 40],
        "low": [1.0, 0.1, 0.01, 0.5, 0.5],
        "high": [1.0, 1.0, 1.0, 0.5, 0.5],
    }
    # Only steps 10 and 20 lie in the first half (0, 20].
    assert bias_index(curve, 40) == pytest.approx(-1.5)
    swapped = dict(curve, low=curve["high"], high=curve["low"])
    assert bias_index(swapped, 40) == pytest.approx(1.5)


@needs_fashion
def test_frequency_bias_quick_denoising(data_env):
    result = run_quick(data_env, "frequency_bias", "--skip", "fashion_mnist")
    cells = result["denoising"]["settings"]
    from applications.experiments import frequency_bias

    assert set(cells) == set(frequency_bias.QUICK_SETTINGS)
    for cell in cells.values():
        assert cell["steps"][0] == 0 and len(cell["steps"]) >= 2
        # The untrained denoiser is the identity: all the noise is left.
        assert cell["low"][0]["mean"] == pytest.approx(1.0, abs=1e-4)
        assert cell["high"][0]["mean"] == pytest.approx(1.0, abs=1e-4)
    assert cells["sobolev_order=+2"]["sobolev_order"] == 2.0
    claims = " ".join(v["claim"] for v in result["verdicts"])
    assert "reverses" in claims and "weakens" in claims
    assert "fashion_mnist" not in result


@pytest.mark.slow
@needs_fashion
@rotated(2)
def test_frequency_bias_quick_fashion_mnist(data_env):
    result = run_quick(data_env, "frequency_bias", "--skip", "denoising")
    summary = result["fashion_mnist"]["summary"]
    assert set(summary) == {"default", "freq_scale=3"}
    for cells in summary.values():
        assert 0 <= cells["test_accuracy"]["mean"] <= 1
        assert cells["test_accuracy"]["n"] == 1
    assert any("fixed in advance" in v["claim"] for v in result["verdicts"])


@pytest.mark.slow  # each configuration imports the backend afresh
@rotated(0)
def test_etsmlp_speed_memory_quick(data_env):
    # Two models at one length: two worker processes.
    argv = ["--lengths", "32", "--models", "etsmlp", "transformer"]
    result = run_quick(data_env, "etsmlp_speed_memory", *argv)
    widths = result["widths"]
    target = widths["etsmlp"]["matched_parameters"]
    assert abs(widths["transformer"]["matched_parameters"] - target) < (
        0.3 * target
    )
    for model in ("etsmlp", "transformer"):
        cell = result["summary"][model]["32"]
        assert cell["status"] == "ok", cell
        (run,) = cell["runs"]
        assert run["timed_steps"] == 2 and run["loss_finite"]
        assert run["tokens_per_second"] > 0
        assert run["peak_rss_mb"] >= run["rss_after_warmup_mb"] > 0
        assert run["peak_method"] == "VmHWM after reset"
    # The position embedding (32 x width) is counted but not matched.
    run = result["summary"]["transformer"]["32"]["runs"][0]
    assert (
        run["position_embedding_parameters"]
        == 32 * (widths["transformer"]["hidden_dim"])
    )
    claims = " ".join(v["claim"] for v in result["verdicts"])
    assert "ETSMLP faster than Transformer" in claims
    assert "ETSMLP lighter than Transformer" in claims


@pytest.mark.backend_independent
def test_etsmlp_speed_memory_records_failures():
    from applications.experiments import etsmlp_speed_memory as experiment

    config = {
        "model": "etsmlp",
        "length": 32,
        "seed": 0,
        "hidden_dim": 8,
        "num_layers": 1,
        "warmup_steps": 1,
        "steps": 1,
        "step_budget": 1.0,
        "memory_cap_mb": None,
        "backend": "jax",
    }
    # Past the time limit: recorded, not raised.
    slow = experiment.measure(config, timeout=0.01)
    assert slow["status"].startswith("too slow")
    # A worker that cannot allocate (its data segment capped below what
    # importing Keras needs) is out of memory.
    starved = experiment.measure(dict(config, memory_cap_mb=64), timeout=120)
    assert starved["status"] == "out of memory", starved
    cells = {
        "etsmlp": {8: {"status": "ok"}},
        "transformer": {8: {"status": "out of memory"}},
    }
    verdict = experiment.verdict_pair(
        "etsmlp", "transformer", 8, "peak_growth_mb", cells, False
    )
    assert verdict["verdict"].startswith("holds: Transformer out of memory")


@pytest.mark.slow
@needs_ett
@rotated(1)
def test_lipschitz_poster_quick(data_env):
    result = run_quick(
        data_env,
        "lipschitz_poster",
        "--models",
        "transformer",
        "--window-norm-check",
    )
    cells = result["etth1"]["h8"]
    assert set(cells) == {"transformer", "transformer (last)"}
    lip = cells["transformer"]
    assert (lip["lambda"], lip["eps"]) == (0.2, 1.0)
    for kind in ("baseline", "lip"):
        assert lip[kind]["test_mse"]["n"] == 1
        assert lip[kind]["test_mse"]["mean"] > 0
    # One selection run (reused as seed 0), the baseline, the 'last' check,
    # then the two ListOps variants without penalty.
    assert len(result["selection"]) == 2
    assert len(result["runs"]) == 4
    assert {r["normalization"] for r in result["runs"] if "model" in r} == {
        "none",
        "last",
    }
    assert set(result["listops"]) == {"S4", "S4 + Emb", "S4 + Emb + Lip"}
    assert result["listops"]["S4 + Emb + Lip"]["lambda"] == 1.0
    claims = [v["claim"] for v in result["verdicts"]]
    assert any("Informer column" in c for c in claims)
    assert sum("L_Lip(y_hat)" in c for c in claims) == 2
    assert sum(c.startswith("ListOps") for c in claims) == 2


@pytest.mark.backend_independent
def test_lipschitz_poster_tables_and_grid_parsing():
    import argparse

    from applications.experiments import lipschitz_poster as poster

    # The poster's Informer column is the Informer paper's, rounded.
    assert poster.informer_column_matches()
    assert poster.lambda_eps("0.2:1") == (0.2, 1.0)
    for bad in ("0.2", "a:1", "-0.1:1", "0.1:-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="LAMBDA:EPS|>"):
            poster.lambda_eps(bad)
    values = poster.token_values(np.array([[0, 16, 8]]), 17)
    np.testing.assert_allclose(values[..., 0], [[0.0, 1.0, 0.5]])
