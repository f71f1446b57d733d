"""The sign of the Lipschitz regularizer, on ListOps and ETTh1.

*Data Continuity Matters* (Qu et al., ICLR 2023) adds lambda * L_Lip of the
embedded sequence to the loss and claims that a negative lambda helps
Transformers and a positive one helps SSMs. Two tasks (`--tasks`):

- `listops`: generated ListOps, the `*_listops_cpu` classifiers at the
  small size of `common.small_listops`, trained `LISTOPS_EPOCHS` epochs;
  lambda is chosen on validation accuracy, the models compared on test
  accuracy.
- `etth1`: ETTh1 univariate (target OT), horizons 168 and 720, the
  `transformer_etth1_cpu` and `s4d_etth1_cpu` forecasters (a shorter
  training, see `ETT_TRAINING`); lambda is chosen on validation MSE, the
  models compared on test MSE and MAE, beside the poster's Transformer and
  Informer columns.

For every task (and horizon):

1. lambda is chosen on validation, separately for each model and sign,
   from a grid over several orders of magnitude (seed 0; that training is
   also seed 0's run at the chosen lambda);
2. the Transformer with -lambda / 0 / +lambda and S4D with +lambda / 0 /
   -lambda are trained on every seed; test metrics mean +- std;
3. the ratio |lambda| * penalty / task loss on the validation set, so that
   one can see whether the penalty was comparable to the task loss;
4. the paper's frequency reading: for sequences x with normalised power
   spectrum p(xi), mean (x[t+1] - x[t])^2 / mean x^2 = E_p[4 sin^2(pi xi)],
   about 4 pi^2 E_p[xi^2] when the power is at low frequencies. Both sides
   are computed from the trained models' real embeddings on the validation
   set (ListOps: padding included; ETTh1: the embedded normalised windows,
   with the Transformer's sine positions).

A run whose loss or embeddings become non-finite (a large negative lambda
can grow the embedding without bound) is recorded as diverged and left out
of the statistics; the tables say how many runs each cell kept.

Example:

    python -m applications.experiments.lipschitz_sign --seeds 0 1 2
    python -m applications.experiments.lipschitz_sign --tasks etth1
"""

import time

import numpy as np

from applications.common.fitting import fit
from applications.experiments import common
from applications.experiments import lipschitz_poster

NAME = "lipschitz_sign"
TASKS = ("listops", "etth1")
# Three magnitudes over four orders: the penalty ranges from negligible to
# larger than the task loss (the ratio is reported).
GRID = (1e-2, 1.0, 1e2)
# The sign the paper recommends for each model.
HELPFUL_SIGN = {"transformer": -1.0, "s4d": 1.0}
HORIZONS = (168, 720)
# Sized for a shared 2-core CPU: 80 steps of 32 windows (about a third of
# an epoch of the 8k training windows), constant learning rate, no early
# stopping. The presets' own training is 4 x 100 steps.
ETT_TRAINING = {"epochs": 1, "steps_per_epoch": 80}
# The small ListOps size trains 5 epochs; 3 here, to fit the shared CPU.
LISTOPS_EPOCHS = 3
# *Data Continuity Matters*, forecasting table, ETTh1: (MSE, MAE), at this
# experiment's horizons and with its column names ("Transformer + Lip").
POSTER_ETTH1 = {
    horizon: {
        name[0].upper() + name[1:]: scores
        for name, scores in lipschitz_poster.POSTER_ETTH1[horizon].items()
    }
    for horizon in HORIZONS
}
PROTOCOL_DIFFERENCES = (
    "The poster does not state its forecasting protocol; its Informer "
    "column equals the univariate ETTh1 table of the Informer paper (Zhou et "
    "al., AAAI 2021), so presumably Informer's protocol: encoder-decoder "
    "models on standardised windows, input length chosen per horizon, "
    "several epochs with early stopping. Ours: univariate OT with the "
    "Informer splits and training-statistics standardisation (as Informer), "
    "but each input window minus its last value inside the model ('last' "
    "window normalisation, added back to the forecast), input length "
    "{input_size}, width 16 and 2 layers, an encoder-only Transformer with a "
    "linear horizon head (no Informer), {steps} training steps of 32 windows "
    "({epochs:.2g} epochs), constant lambda (no decay), lambda chosen on "
    "validation MSE, seeds {seeds}; MSE and MAE over every test window on the "
    "standardised scale."
)


def add_arguments(parser):
    common.add_task_arguments(parser, TASKS, HORIZONS)
    parser.add_argument(
        "--grid",
        type=float,
        nargs="+",
        default=None,
        help=f"Magnitudes of lambda to choose from (default {GRID}).",
    )
    common.add_jobs_argument(parser)


def frequency_reading(embeddings):
    """Penalty over power against 4 pi^2 E_p[xi^2] of the sequences."""
    x = np.asarray(embeddings, dtype=np.float64)
    length = x.shape[1]
    penalty = float(np.mean(np.diff(x, axis=1) ** 2))
    power = float(np.mean(x**2))
    spectrum = np.abs(np.fft.fft(x, axis=1)) ** 2  # (n, L, C)
    xi = np.fft.fftfreq(length)  # cycles per step, in [-1/2, 1/2)
    weights = spectrum.sum(axis=(0, 2))
    p = weights / weights.sum()
    return {
        "penalty_over_power": penalty / power,
        "four_pi2_E_xi2": float(4 * np.pi**2 * np.sum(p * xi**2)),
        # Exact for circular differences; differs by the wrap-around term.
        "E_4sin2": float(np.sum(p * 4 * np.sin(np.pi * xi) ** 2)),
    }


def measure_embeddings(weight, task_loss, embeddings):
    """Penalty, its ratio to the task loss and the frequency reading.

    Returns None values when training diverged (non-finite numbers).
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if not (common.finite(task_loss) and np.all(np.isfinite(embeddings))):
        return {
            "penalty": None,
            "penalty_over_task_loss": None,
            "frequency": None,
        }
    # L_Lip, as `keras_ssm.regularizers.lipschitz_penalty` computes it.
    penalty = float(np.mean(np.diff(embeddings, axis=1) ** 2))
    return {
        "penalty": penalty,
        "penalty_over_task_loss": abs(weight) * penalty / task_loss,
        "frequency": frequency_reading(embeddings),
    }


# --- ListOps -------------------------------------------------------------


def listops_setup(model_name, args):
    # The small ListOps size: the lambda grid trains dozens of models.
    return common.small_listops_setup(model_name, args.quick, LISTOPS_EPOCHS)


def listops_embedding_model(model):
    """The backbone's embedded sequence (the penalty's input)."""
    import keras

    backbone = model.backbone
    names = [layer.name for layer in backbone.layers]
    if "lipschitz" in names:
        tensor = backbone.get_layer("lipschitz").input
    elif "add_positions" in names:
        tensor = backbone.get_layer("add_positions").output
    else:
        tensor = backbone.get_layer("embedding").output
    if isinstance(tensor, (list, tuple)):
        tensor = tensor[0]
    return keras.Model(backbone.input, tensor)


def listops_train(model_name, weight, seed, setup):
    """One ListOps run; returns accuracies, loss ratio and reading."""
    import keras
    from keras import ops

    from keras_ssm.models import SSMClassifier

    splits, training, overrides = setup
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits
    keras.utils.set_random_seed(seed)
    model = SSMClassifier.from_preset(
        f"{model_name}_listops_cpu",
        lipschitz_weight=weight if weight else None,
        **overrides,
    )
    common.fit_preset(model, training, x_train, y_train)
    batch_size = training["batch_size"]
    val_accuracy = float(
        model.evaluate(x_val, y_val, batch_size=batch_size, verbose=0)[1]
    )
    test_accuracy = float(
        model.evaluate(x_test, y_test, batch_size=batch_size, verbose=0)[1]
    )
    embeddings = ops.convert_to_numpy(listops_embedding_model(model)(x_val))
    logits = model.predict(x_val, batch_size=batch_size, verbose=0)
    task_loss = float(
        ops.convert_to_numpy(
            keras.losses.sparse_categorical_crossentropy(
                y_val, logits, from_logits=True
            )
        ).mean()
    )
    run = {
        "model": model_name,
        "weight": weight,
        "seed": seed,
        "val_accuracy": val_accuracy,
        "test_accuracy": test_accuracy,
        "task_loss": task_loss if common.finite(task_loss) else None,
        **measure_embeddings(weight, task_loss, embeddings),
    }
    run["diverged"] = run["frequency"] is None
    return run


# --- ETTh1 ---------------------------------------------------------------


def etth1_setup(model_name, horizon, args):
    """Windows and sizes of one horizon (shared by both models)."""
    from keras_ssm.datasets.ett import load_forecasting_data

    input_size = 32 if args.quick else 96
    data = load_forecasting_data(
        "ETTh1", "S", "OT", input_size=input_size, h=horizon, batch_size=32
    )
    val, test = data.val.arrays(), data.test.arrays()
    training = dict(ETT_TRAINING)
    if args.quick:
        training = {"epochs": 1, "steps_per_epoch": 2}
        val = tuple(a[:64] for a in val)
        test = tuple(a[:64] for a in test)
    return {
        "data": data,
        "val": val,
        "test": test,
        "training": training,
        "input_size": input_size,
        "horizon": horizon,
        "quick": args.quick,
    }


def build_forecaster(model_name, weight, setup):
    """The `*_etth1_cpu` forecaster at `setup`'s sizes with lambda."""
    from keras_ssm import models

    entry = models.get_preset(f"{model_name}_etth1_cpu")
    config = dict(entry["model"]["config"])
    config.update(input_size=setup["input_size"], horizon=setup["horizon"])
    if "backbone" in config:
        backbone = dict(config.pop("backbone"))
        if setup["quick"]:
            backbone.update(num_layers=1, hidden_dim=8, d_state=4)
        config["backbone"] = models.SSMBackbone(
            **backbone, lipschitz_weight=weight
        )
        return models.SSMForecaster(**config)
    if setup["quick"]:
        config.update(num_layers=1, hidden_dim=8, num_heads=2)
    return models.TransformerForecaster(**config, lipschitz_weight=weight)


def forecaster_embeddings(model, x):
    """The embedded normalised windows (what the penalty sees)."""
    import keras
    from keras import ops

    backbone = getattr(model, "backbone", None)
    if backbone is not None:  # SSMForecaster
        names = [layer.name for layer in backbone.layers]
        tensor = (
            backbone.get_layer("lipschitz").input
            if "lipschitz" in names
            else backbone.get_layer("embedding").output
        )
        embed = keras.Model(backbone.input, tensor)
        normalized = model.get_layer("normalize")(ops.convert_to_tensor(x))[0]
        return ops.convert_to_numpy(embed(normalized))
    # The Transformer: the first encoder layer reads embedding + positions.
    embed = keras.Model(model.input, model.get_layer("encoder_0").input)
    return ops.convert_to_numpy(embed(ops.convert_to_tensor(x)))


def etth1_train(model_name, weight, seed, setup):
    """One ETTh1 run; returns MSE/MAE, loss ratio and reading."""
    import keras

    from keras_ssm.models import get_preset

    keras.utils.set_random_seed(seed)
    windows = common.reshuffled(setup["data"].train, seed)
    model = build_forecaster(model_name, weight, setup)
    training = {
        **get_preset(f"{model_name}_etth1_cpu")["training"],
        **setup["training"],
    }
    model.compile_from_preset(
        training, steps_per_epoch=training["steps_per_epoch"]
    )
    fit(
        model,
        windows,
        epochs=training["epochs"],
        steps_per_epoch=training["steps_per_epoch"],
        verbose=0,
        stop_on_nan=False,
    )
    # The metrics exclude the penalty that `loss` includes.
    scores = {}
    for split in ("val", "test"):
        x, y = setup[split]
        result = model.evaluate(
            x, y, batch_size=256, verbose=0, return_dict=True
        )
        scores[split] = (float(result["mse"]), float(result["mae"]))
    # At most 512 validation windows, spread over the split.
    x_val = setup["val"][0]
    x_val = x_val[:: max(1, len(x_val) // 512)][:512]
    embeddings = forecaster_embeddings(model, x_val)
    run = {
        "model": model_name,
        "horizon": setup["horizon"],
        "weight": weight,
        "seed": seed,
        "val_mse": scores["val"][0],
        "val_mae": scores["val"][1],
        "test_mse": scores["test"][0],
        "test_mae": scores["test"][1],
        "task_loss": scores["val"][0]
        if common.finite(scores["val"][0])
        else None,
        **measure_embeddings(weight, scores["val"][0], embeddings),
    }
    for key in ("val_mse", "val_mae", "test_mse", "test_mae"):
        if not common.finite(run[key]):
            run[key] = None
    run["diverged"] = run["frequency"] is None or run["test_mse"] is None
    return run


# --- Shared protocol -----------------------------------------------------


def summarize_finite(runs, key):
    """`common.summarize` of the runs that did not diverge (or None)."""
    values = [r[key] for r in runs if not r["diverged"]]
    return common.summarize(values) if values else None


# The data of each task, built once per process: with `--jobs` every worker
# builds its own instead of receiving it pickled.
_SETUPS = {}


def task_setup(task, model_name, horizon, args):
    """The setup of `task` ("listops" or "etth1"), cached per process."""
    key = (task, model_name if task == "listops" else None, horizon)
    if key not in _SETUPS:
        if task == "listops":
            _SETUPS[key] = listops_setup(model_name, args)
        else:
            _SETUPS[key] = etth1_setup(None, horizon, args)
    return _SETUPS[key]


def train_run(task, horizon, args, model_name, weight, seed):
    """One training of `task` (run here or in a `common.map_runs` worker)."""
    train = listops_train if task == "listops" else etth1_train
    setup = task_setup(task, model_name, horizon, args)
    start = time.perf_counter()
    done = train(model_name, weight, seed, setup)
    # Wall time on the machine the run shared: not a benchmark.
    done["seconds_under_load"] = time.perf_counter() - start
    done["task"] = "listops" if task == "listops" else f"etth1_h{horizon}"
    metric = "val_accuracy" if task == "listops" else "val_mse"
    print(
        f"{done['task']} {model_name} lambda={weight:+g} seed {seed}: "
        f"{metric} {done[metric]} ({done['seconds_under_load']:.0f} s)",
        flush=True,
    )
    return done


def run_task(label, model_names, task, horizon, args, grid, metric, higher):
    """Selection on seed 0, then every seed at -lambda / 0 / +lambda.

    The trainings of each stage (the selection grid, then the seeds) run
    `args.jobs` at a time.

    Args:
        label: the task's key in the summary ("listops", "etth1_h168").
        model_names: models to run (keys of `HELPFUL_SIGN`).
        task: "listops" or "etth1" (see `train_run`).
        horizon: the ETTh1 horizon (None for ListOps).
        args: the parsed options.
        grid: magnitudes of lambda.
        metric: (selection metric on validation, compared test metric).
        higher: whether larger metric values are better.

    Returns:
        (selection runs, all runs, summary {model: {lambda: cell}},
        verdicts).
    """
    select_key, test_key = metric
    cache, selection, summary, verdicts = {}, [], {}, []

    def run_all(keys):
        """The runs of `(model, weight, seed)` keys, training the new ones."""
        keys = [(m, float(w), s) for m, w, s in keys]
        missing = [k for k in dict.fromkeys(keys) if k not in cache]
        calls = [(task, horizon, args, *key) for key in missing]
        results = common.map_runs(train_run, calls, args.jobs)
        cache.update(zip(missing, results))
        return [cache[k] for k in keys]

    seed0 = args.seeds[0]
    signs = {m: (HELPFUL_SIGN[m], -HELPFUL_SIGN[m]) for m in model_names}
    run_all(
        (m, sign * g, seed0)
        for m in model_names
        for sign in signs[m]
        for g in grid
    )
    chosen_by_model = {}
    for model_name in model_names:
        chosen = {}
        for sign in signs[model_name]:
            trials = run_all((model_name, sign * g, seed0) for g in grid)
            selection += trials
            usable = [t for t in trials if not t["diverged"]]
            if usable:
                pick = max if higher else min
                best = pick(usable, key=lambda r: r[select_key])
            else:  # every lambda diverged: the smallest is reported
                best = trials[0]
            chosen[sign] = best["weight"]
        chosen_by_model[model_name] = chosen
    run_all(
        (m, w, s)
        for m, chosen in chosen_by_model.items()
        for w in (chosen[HELPFUL_SIGN[m]], 0.0, chosen[-HELPFUL_SIGN[m]])
        for s in args.seeds
    )
    for model_name in model_names:
        helpful = HELPFUL_SIGN[model_name]
        chosen = chosen_by_model[model_name]
        cells = {}
        for weight in (chosen[helpful], 0.0, chosen[-helpful]):
            mine = run_all((model_name, weight, s) for s in args.seeds)
            cells[f"{weight:+g}"] = {
                "weight": weight,
                "runs": len(mine),
                "diverged": sum(r["diverged"] for r in mine),
                **{
                    key: summarize_finite(mine, key)
                    for key in metric_keys(test_key)
                },
                "penalty_over_task_loss": summarize_finite(
                    mine, "penalty_over_task_loss"
                ),
            }
        summary[model_name] = cells
        paper = cells[f"{chosen[helpful]:+g}"][test_key]
        for other, what in (
            (cells["+0"][test_key], "lambda=0"),
            (cells[f"{chosen[-helpful]:+g}"][test_key], "the other sign"),
        ):
            claim = (
                f"{label}: lambda={chosen[helpful]:+g} (the paper's sign) "
                f"helps {model_name} against {what} ({test_key})"
            )
            if paper is None or other is None:
                verdicts.append(
                    {"claim": claim, "verdict": "not comparable: diverged"}
                )
                continue
            cmp = common.compare(paper, other, higher_is_better=higher)
            verdicts.append({"claim": claim, **cmp})
    runs = sorted(
        cache.values(), key=lambda r: (r["model"], r["weight"], r["seed"])
    )
    return selection, runs, summary, verdicts


def metric_keys(test_key):
    return ("test_mse", "test_mae") if test_key == "test_mse" else (test_key,)


def stat(cell, key, digits=4):
    value = cell.get(key)
    return "diverged" if value is None else common.format_stat(value, digits)


def poster_rows(horizon):
    return [
        [f"{name} (poster)", "", f"{mse:.4g}", f"{mae:.4g}", "", ""]
        for name, (mse, mae) in POSTER_ETTH1.get(horizon, {}).items()
    ]


def main(argv=None):
    argv, args = common.start(argv, NAME, __doc__, add_arguments)
    grid = args.grid or ((1.0,) if args.quick else GRID)
    horizons = args.horizons or ((8,) if args.quick else HORIZONS)
    models = tuple(HELPFUL_SIGN)
    parts = {}  # label -> (selection, runs, summary, verdicts, table)
    planned = []
    if "listops" in args.tasks:
        planned.append("listops")
    if "etth1" in args.tasks:
        planned += [f"etth1_h{h}" for h in horizons]
    ett_setups = {}
    result = None
    if "listops" in args.tasks:
        part = run_task(
            "listops",
            models,
            "listops",
            None,
            args,
            grid,
            ("val_accuracy", "test_accuracy"),
            True,
        )
        parts["listops"] = part + (listops_table(part[2]),)
        # Written after every part: an interrupted run keeps what it did.
        result = write_result(argv, args, grid, parts, planned, ett_setups)
    if "etth1" in args.tasks:
        for horizon in horizons:
            ett_setups[horizon] = task_setup("etth1", None, horizon, args)
            label = f"etth1_h{horizon}"
            part = run_task(
                label,
                models,
                "etth1",
                horizon,
                args,
                grid,
                ("val_mse", "test_mse"),
                False,
            )
            parts[label] = part + (etth1_table(horizon, part[2]),)
            result = write_result(argv, args, grid, parts, planned, ett_setups)
    print(f"Results written to {args.output_dir}")
    return result


def listops_table(summary):
    return (
        "ListOps: test accuracy and penalty / task loss",
        ["model", "lambda", "test accuracy", "penalty / task loss", "diverged"],
        [
            [
                m,
                key,
                stat(cell, "test_accuracy"),
                stat(cell, "penalty_over_task_loss", 3),
                f"{cell['diverged']}/{cell['runs']}",
            ]
            for m, cells in summary.items()
            for key, cell in cells.items()
        ],
    )


def etth1_table(horizon, summary):
    rows = [
        [
            m,
            key,
            stat(cell, "test_mse"),
            stat(cell, "test_mae"),
            stat(cell, "penalty_over_task_loss", 3),
            f"{cell['diverged']}/{cell['runs']}",
        ]
        for m, cells in summary.items()
        for key, cell in cells.items()
    ]
    return (
        f"ETTh1 univariate, horizon {horizon}: test MSE and MAE "
        "(standardised scale), beside the poster's columns",
        [
            "model",
            "lambda",
            "test MSE",
            "test MAE",
            "penalty / task loss",
            "diverged",
        ],
        rows + poster_rows(horizon),
    )


def write_result(argv, args, grid, parts, planned, ett_setups):
    """Writes the outputs of the parts done so far; returns the result."""
    selection, runs, summary, verdicts, tables = [], [], {}, [], []
    for label, (sel, done, cells, verdict, table) in parts.items():
        selection += sel
        runs += done
        summary[label] = cells
        verdicts += verdict
        tables.append(table)
    missing = [label for label in planned if label not in parts]
    if missing:
        verdicts.append(
            {
                "claim": "Parts still to run: " + ", ".join(missing),
                "verdict": "not measured yet",
            }
        )
    freq_rows = [
        [
            r["task"],
            r["model"],
            f"{r['weight']:+g}",
            r["seed"],
            f"{r['frequency']['penalty_over_power']:.4g}",
            f"{r['frequency']['four_pi2_E_xi2']:.4g}",
            f"{r['frequency']['E_4sin2']:.4g}",
        ]
        for r in runs
        if r["frequency"] is not None
    ]
    selection_rows = [
        [
            r["task"],
            r["model"],
            f"{r['weight']:+g}",
            "diverged"
            if r["diverged"]
            else f"{r.get('val_accuracy', r.get('val_mse')):.4g}",
            "diverged"
            if r["penalty_over_task_loss"] is None
            else f"{r['penalty_over_task_loss']:.3g}",
        ]
        for r in selection
    ]
    tables.append(
        (
            f"Choice of lambda on validation (seed {args.seeds[0]}; ListOps: "
            "accuracy, ETTh1: MSE)",
            ["task", "model", "lambda", "validation", "penalty / task loss"],
            selection_rows,
        )
    )
    tables.append(
        (
            "Frequency reading of the embeddings (validation set)",
            [
                "task",
                "model",
                "lambda",
                "seed",
                "L_Lip / mean x^2",
                "4 pi^2 E_p[xi^2]",
                "E_p[4 sin^2(pi xi)]",
            ],
            freq_rows,
        )
    )
    result = {
        "experiment": NAME,
        "environment": common.environment(argv, NAME),
        "quick": args.quick,
        "seeds": args.seeds,
        "tasks": list(args.tasks),
        "complete": not missing,
        "grid": list(grid),
        "listops_epochs": LISTOPS_EPOCHS if not args.quick else 1,
        "selection": [run_summary(r) for r in selection],
        "summary": summary,
        "runs": runs,
        "verdicts": verdicts,
    }
    if ett_setups:
        any_setup = next(iter(ett_setups.values()))
        training = any_setup["training"]
        steps = training["epochs"] * training["steps_per_epoch"]
        result["etth1"] = {
            "horizons": list(ett_setups),
            "input_size": any_setup["input_size"],
            "training_steps": steps,
            "poster": {str(h): POSTER_ETTH1.get(h) for h in ett_setups},
            "protocol_differences": PROTOCOL_DIFFERENCES.format(
                input_size=any_setup["input_size"],
                steps=steps,
                epochs=steps * 32 / any_setup["data"].train.num_windows,
                seeds=" ".join(str(s) for s in args.seeds),
            ),
        }
        verdicts.append(
            {
                "claim": "Protocol against the poster's ETTh1 columns",
                "verdict": result["etth1"]["protocol_differences"],
            }
        )

    def plot(figure):
        draw_plot(figure, summary, runs)

    common.write_outputs(
        args.output_dir,
        "Lipschitz regularizer sign (" + ", ".join(args.tasks) + ")",
        result,
        tables,
        plot,
    )
    return result


def run_summary(run):
    """The selection entry of a run (the full run is under `runs`)."""
    keep = ("task", "model", "weight", "seed", "diverged")
    keep += ("val_accuracy", "val_mse", "penalty_over_task_loss")
    return {k: run[k] for k in keep if k in run}


def draw_plot(figure, summary, runs):
    """One panel per task (metric at the paper's sign, 0, the other sign),
    then the frequency reading."""
    panels = len(summary) + 1
    for index, (label, models) in enumerate(summary.items()):
        axes = figure.add_subplot(1, panels, index + 1)
        key = "test_accuracy" if label == "listops" else "test_mse"
        for m, cells in models.items():
            # Cells are stored as (paper's sign, 0, other sign).
            keys = list(cells)
            points = [
                (i, cells[k][key]) for i, k in enumerate(keys) if cells[k][key]
            ]
            common.errorbars(
                axes,
                [i for i, _ in points],
                [c for _, c in points],
                marker="o",
                capsize=4,
                label=f"{m} ({keys[0]} / {keys[-1]})",
            )
        axes.set_xticks([0, 1, 2], ["paper's\nsign", "0", "other\nsign"])
        axes.set_title(label, fontsize=9)
        axes.set_xlabel("lambda")
        axes.set_ylabel(key.replace("_", " "))
        axes.legend(fontsize=7)
    axes = figure.add_subplot(1, panels, panels)
    done = [r for r in runs if r["frequency"] is not None]
    measured = [r["frequency"]["penalty_over_power"] for r in done]
    predicted = [r["frequency"]["four_pi2_E_xi2"] for r in done]
    colors = ["C0" if r["model"] == "transformer" else "C1" for r in done]
    axes.scatter(predicted, measured, c=colors, s=12)
    top = max(measured + predicted + [1e-12])
    axes.plot([0, top], [0, top], "k--")
    axes.set_xlabel("4 pi^2 E_p[xi^2]")
    axes.set_ylabel("L_Lip / mean x^2 (C0 Transformer, C1 S4D)")


if __name__ == "__main__":
    main()
