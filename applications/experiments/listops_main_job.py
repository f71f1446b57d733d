"""The main job: S4D (`cpu` preset) on generated ListOps, beside the others.

Every model (S4D, ETSMLP, ETSMLP-Gate, Mamba, the Transformer baseline)
trains from its `<model>_listops_cpu` preset on the same generated data,
with the same wall-clock budget, for each seed: the learning-rate schedule
is spread over the budget and training stops at the end of the batch that
passes it (`applications.common.time_budget`). Reported: test accuracy and training
seconds, mean +- std over seeds; the verdicts say whether S4D reaches the
target accuracy within the budget and whether it beats each other model by
more than the spread.

Example:

    python -m applications.experiments.listops_main_job --seeds 0 1 2
"""

from applications.experiments import common

NAME = "listops_main_job"
# The budget ends every run; the epoch count only has to be out of reach.
BUDGET_EPOCH_CAP = 1000
MODELS = ("s4d", "etsmlp", "etsmlp_gate", "mamba", "transformer")


def add_arguments(parser):
    parser.add_argument(
        "--models", nargs="+", choices=MODELS, default=list(MODELS)
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=300.0,
        help="Training wall-clock budget per run (default 5 minutes).",
    )
    parser.add_argument(
        "--target-accuracy",
        type=float,
        default=0.60,
        help="Test accuracy the S4D main job should reach.",
    )
    parser.add_argument("--num-train", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    common.add_jobs_argument(parser)


def run_one(model_name, seed, args):
    """Trains one model on one seed; returns its measurements."""
    import keras

    from applications.common.time_budget import WallClockBudget
    from keras_ssm import datasets
    from keras_ssm.models import SSMClassifier
    from keras_ssm.models import get_preset

    preset_name = f"{model_name}_listops_cpu"
    preset = get_preset(preset_name)
    data = dict(preset["data"])
    training = dict(preset["training"])
    overrides = {}
    if args.quick:
        overrides = common.quick_listops(data, training)
    if args.num_train:
        data["num_train"] = args.num_train
    if args.epochs:
        training["epochs"] = args.epochs
    overrides["sequence_length"] = data["max_length"]

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        datasets.load_preset_data(data, seed=0)
    )  # the same data for every seed: seeds vary the model
    keras.utils.set_random_seed(seed)
    model = SSMClassifier.from_preset(preset_name, **overrides)
    budget = WallClockBudget(args.budget_seconds, training)
    if args.epochs is None:  # the clock ends the run
        training["epochs"] = BUDGET_EPOCH_CAP
    history, seconds = common.fit_preset(
        model,
        training,
        x_train,
        y_train,
        budget=budget,
        validation_data=(x_val, y_val),
    )
    _, test_accuracy = model.evaluate(
        x_test, y_test, batch_size=training["batch_size"], verbose=0
    )
    print(
        f"{model_name} seed {seed}: test accuracy {test_accuracy:.4f} after "
        f"{seconds:.0f} s of training",
        flush=True,
    )
    return {
        "model": model_name,
        "seed": seed,
        "test_accuracy": float(test_accuracy),
        "train_seconds": float(seconds),
        "epochs_run": len(history.get("loss", [])),
        "budget_exhausted": bool(budget.exhausted),
        "num_parameters": int(model.count_params()),
        "num_train": int(len(y_train)),
        "val_accuracy": [float(v) for v in history["val_accuracy"]],
    }


def main(argv=None):
    argv, args = common.start(argv, NAME, __doc__, add_arguments)
    calls = [
        (model, seed, args) for model in args.models for seed in args.seeds
    ]
    runs = common.map_runs(run_one, calls, args.jobs)
    summary = {}
    for model in args.models:
        mine = [r for r in runs if r["model"] == model]
        summary[model] = {
            "test_accuracy": common.summarize(
                [r["test_accuracy"] for r in mine]
            ),
            "train_seconds": common.summarize(
                [r["train_seconds"] for r in mine]
            ),
            "num_parameters": mine[0]["num_parameters"],
        }
    verdicts = []
    if "s4d" in summary:
        s4d = summary["s4d"]
        acc, secs = s4d["test_accuracy"], s4d["train_seconds"]
        reached = (
            acc["mean"] - acc["std"] >= args.target_accuracy
            and secs["mean"] <= args.budget_seconds * 1.05
        )
        verdicts.append(
            {
                "claim": f"S4D cpu preset reaches {args.target_accuracy:.0%} "
                f"test accuracy within {args.budget_seconds:g} s",
                "holds": reached,
                "verdict": ("holds" if reached else "does not hold")
                + f" ({common.format_stat(acc)})",
            }
        )
        for other in args.models:
            if other == "s4d":
                continue
            cmp = common.compare(acc, summary[other]["test_accuracy"])
            verdicts.append({"claim": f"S4D beats {other} on ListOps", **cmp})
    result = {
        "experiment": NAME,
        "environment": common.environment(argv, NAME),
        "quick": args.quick,
        "seeds": args.seeds,
        "budget_seconds": args.budget_seconds,
        "summary": summary,
        "runs": runs,
        "verdicts": verdicts,
    }
    rows = [
        [
            m,
            common.format_stat(s["test_accuracy"]),
            common.format_stat(s["train_seconds"], 3),
            s["num_parameters"],
        ]
        for m, s in summary.items()
    ]

    def plot(figure):
        axes = figure.add_subplot(1, 1, 1)
        names = list(summary)
        means = [summary[m]["test_accuracy"]["mean"] for m in names]
        stds = [summary[m]["test_accuracy"]["std"] for m in names]
        axes.bar(names, means, yerr=stds, capsize=4)
        axes.axhline(args.target_accuracy, color="k", linestyle="--")
        axes.set_ylabel("test accuracy (mean +- std over seeds)")
        axes.set_title("Generated ListOps, equal time budget")

    return common.finish(
        args,
        "ListOps main job",
        result,
        [
            (
                "Test accuracy and training time",
                ["model", "test accuracy", "train seconds", "parameters"],
                rows,
            )
        ],
        plot,
    )


if __name__ == "__main__":
    main()
