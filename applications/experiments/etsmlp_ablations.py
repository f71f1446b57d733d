"""ETSMLP against ETSMLP-Gate and S4D, and its ablations, at CPU scale.

*Incorporating Exponential Smoothing into MLP* (Chu & Lin, 2024). From the
`*_<task>_cpu` presets (ListOps at the small size of
`common.small_listops`), on generated ListOps and sequential Fashion-MNIST:

- ETSMLP, ETSMLP-Gate and S4D at (about) equal parameter count: the
  ETSMLP preset sets the count; ETSMLP-Gate and S4D take the width
  (`hidden_dim`) whose count is closest to it;
- the Table 3 ablations, each a switch of `keras_ssm.layers.CES`: the
  real field (`complex=False`), no alpha (`use_alpha=False`: alpha = 1),
  no beta (`use_beta=False`: beta = 1) and no omega (`use_omega=False`:
  no sigmoid(omega) x shortcut);
- the Table 4 initialisations: the ring of the preset, a ring near the unit
  circle (r in [0.9, 0.99], phase up to 0.314) and the stable-point
  initialisation (`init="stable"`).

The ablations and initialisations are the paper's ListOps tables: they run
on ListOps only; sequential Fashion-MNIST runs the three-model comparison.

Every variant trains for the preset's epochs on the same data; test
accuracy mean +- std over seeds. The speed/memory-against-length setting of
the paper's Figure 3 is `etsmlp_speed_memory`.

Example:

    python -m applications.experiments.etsmlp_ablations --seeds 0 1 2
"""

from applications.common import scaling
from applications.experiments import common

NAME = "etsmlp_ablations"
TASKS = ("listops", "fashion_mnist")
# name: (block type, CES arguments)
VARIANTS = {
    "ETSMLP": ("etsmlp", {}),
    "ETSMLP-Gate (matched)": ("etsmlp_gate", {}),
    "S4D (matched)": ("s4d", {}),
    "ETSMLP real field": ("etsmlp", {"complex": False}),
    "ETSMLP without alpha": ("etsmlp", {"use_alpha": False}),
    "ETSMLP without beta": ("etsmlp", {"use_beta": False}),
    "ETSMLP without omega": ("etsmlp", {"use_omega": False}),
    "ETSMLP ring r in [0.9, 0.99]": (
        "etsmlp",
        {"r_min": 0.9, "r_max": 0.99, "max_phase": 0.314},
    ),
    "ETSMLP stable init": ("etsmlp", {"init": "stable"}),
}
# What runs on sequential Fashion-MNIST (784 steps, the costlier task).
COMPARISON = ("ETSMLP", "ETSMLP-Gate (matched)", "S4D (matched)")
# The paper's Table 3 (ListOps accuracy, %), beside ours.
PAPER_TABLE_3 = {
    "ETSMLP": 61.35,
    "ETSMLP real field": 40.5,
    "ETSMLP without alpha": 41.5,
    "ETSMLP without omega": 40.75,
    "ETSMLP without beta": 56.05,
}


def paper_accuracy(task, name):
    """The paper's Table 3 accuracy of a variant (ListOps only), or "-"."""
    if task != "listops" or name not in PAPER_TABLE_3:
        return "-"
    return f"{PAPER_TABLE_3[name] / 100:.4f}"


def add_arguments(parser):
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=None)


def task_setup(task, quick):
    from keras_ssm import datasets
    from keras_ssm.models import get_preset

    if task == "listops":  # the small ListOps size: dozens of trainings
        data, training, overrides = common.small_listops("etsmlp")
    else:
        preset = get_preset(f"etsmlp_{task}_cpu")
        data, training = dict(preset["data"]), dict(preset["training"])
        overrides = {}
    if quick and task == "listops":
        overrides = common.quick_listops(data, training, num_validation=16)
    elif quick:
        data.update(max_train=60, max_test=20)
        training.update(epochs=1, batch_size=16)
        overrides = {"num_layers": 1, "hidden_dim": 16}
    if "max_length" in data:
        overrides["sequence_length"] = data["max_length"]
    return datasets.load_preset_data(data, seed=0), training, overrides


def build(task, block_type, overrides, block_kwargs):
    from keras_ssm.models import SSMClassifier
    from keras_ssm.models import get_preset

    kwargs = dict(overrides)
    preset = get_preset(f"{block_type}_{task}_cpu")
    if "intermediate_dim" not in preset["model"]["config"]["backbone"]:
        kwargs.pop("intermediate_dim", None)  # S4D blocks have none
    if block_kwargs:
        kwargs["block_kwargs"] = block_kwargs
    return SSMClassifier.from_preset(f"{block_type}_{task}_cpu", **kwargs)


def matched_width(task, block_type, overrides, target):
    """The `hidden_dim` whose parameter count is closest to `target`."""

    def count(width):
        overrides_at = dict(overrides, hidden_dim=width)
        return build(task, block_type, overrides_at, {}).count_params()

    return scaling.matched_width(count, target, limit=256)


def train(task, block_type, overrides, block_kwargs, seed, splits, training):
    import keras

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits
    keras.utils.set_random_seed(seed)
    model = build(task, block_type, overrides, block_kwargs)
    _, seconds = common.fit_preset(model, training, x_train, y_train)
    accuracy = model.evaluate(
        x_test, y_test, batch_size=training["batch_size"], verbose=0
    )[1]
    return float(accuracy), seconds, int(model.count_params())


def main(argv=None):
    argv, args = common.start(argv, NAME, __doc__, add_arguments)
    tasks = args.tasks or (["listops"] if args.quick else list(TASKS))
    summary, verdicts, rows = {}, [], []
    for task in tasks:
        try:
            splits, training, overrides = task_setup(task, args.quick)
        except Exception as error:  # absent data: say so, go on
            verdicts.append(
                common.not_measured(task, f"{type(error).__name__}: {error}")
            )
            continue
        target = build(task, "etsmlp", overrides, {}).count_params()
        summary[task] = {}
        for name, (block_type, block_kwargs) in VARIANTS.items():
            if task != "listops" and name not in COMPARISON:
                continue
            variant_overrides = dict(overrides)
            if "matched" in name:
                width, _ = matched_width(task, block_type, overrides, target)
                variant_overrides["hidden_dim"] = width
            measured = [
                train(
                    task,
                    block_type,
                    variant_overrides,
                    block_kwargs,
                    seed,
                    splits,
                    training,
                )
                for seed in args.seeds
            ]
            summary[task][name] = {
                "block_type": block_type,
                "block_kwargs": block_kwargs,
                "hidden_dim": variant_overrides.get("hidden_dim"),
                "num_parameters": measured[0][2],
                "test_accuracy": common.summarize([m[0] for m in measured]),
                "train_seconds": common.summarize([m[1] for m in measured]),
            }
            cell = summary[task][name]
            rows.append(
                [
                    task,
                    name,
                    cell["num_parameters"],
                    common.format_stat(cell["test_accuracy"]),
                    paper_accuracy(task, name),
                    common.format_stat(cell["train_seconds"], 3),
                ]
            )
        base = summary[task]["ETSMLP"]["test_accuracy"]
        for other in ("ETSMLP-Gate (matched)", "S4D (matched)"):
            verdicts.append(
                {
                    "claim": f"{task}: ETSMLP beats {other}",
                    **common.compare(
                        base, summary[task][other]["test_accuracy"]
                    ),
                }
            )
        for name in summary[task]:
            if name.startswith("ETSMLP ") and name != "ETSMLP":
                verdicts.append(
                    {
                        "claim": f"{task}: ETSMLP (complex ring) beats {name}",
                        **common.compare(
                            base, summary[task][name]["test_accuracy"]
                        ),
                    }
                )
    result = {
        "experiment": NAME,
        "environment": common.environment(argv, NAME),
        "quick": args.quick,
        "seeds": args.seeds,
        "summary": summary,
        "paper_table_3_listops": PAPER_TABLE_3,
        "verdicts": verdicts,
    }

    def plot(figure):
        for index, (task, cells) in enumerate(summary.items()):
            axes = figure.add_subplot(1, len(summary), index + 1)
            names = list(cells)
            axes.barh(
                names,
                [cells[n]["test_accuracy"]["mean"] for n in names],
                xerr=[cells[n]["test_accuracy"]["std"] for n in names],
                capsize=3,
            )
            axes.set_title(task)
            axes.set_xlabel("test accuracy")
            axes.tick_params(axis="y", labelsize=7)

    return common.finish(
        args,
        "ETSMLP: equal-size comparison, ablations and initialisations",
        result,
        [
            (
                "Test accuracy",
                [
                    "task",
                    "variant",
                    "parameters",
                    "test accuracy",
                    "paper (LRA ListOps, Table 3)",
                    "seconds",
                ],
                rows,
            )
        ],
        plot,
    )


if __name__ == "__main__":
    main()
