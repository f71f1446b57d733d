"""Continuity laws: model continuity, task continuity, temporal subsampling.

Three measurements from *Continuity Laws for Sequential Models* (Yu, Lyu,
Erichson):

1. Model continuity under temporal refinement
   (`keras_ssm.analysis.model_continuity`): a smooth signal sampled at
   step tau / r, r = 1, 2, 4, ..., R, with the layers' dt scaled by 1 / r;
   relative RMS error of each refinement against the finest, at input
   amplitudes 0.1, 1 and 10, for S4D, CES and SelectiveSSM (freshly
   initialised layers; the seed varies the initialisation). CES is refined
   through its step alpha (`dt_scale` multiplies alpha in lambda^alpha). A
   continuous model's error shrinks as r grows; a linear one (S4D, CES) has
   the same relative error at every amplitude, a selective one need not.
2. Task continuity (`keras_ssm.analysis.task_continuity`) of each shipped
   data set that can be loaded offline: ETTh1, generated ListOps,
   sequential Fashion-MNIST, generated Pathfinder 32 px.
3. Temporal subsampling: S4D and Mamba trained on sequential Fashion-MNIST
   at full rate, evaluated on inputs averaged over windows of 2 and 4
   steps (`temporal_subsample`) with dt scaled by the same factor
   (`dt_scaled`); test accuracy per rate, mean +- std over seeds.

Example:

    python -m applications.experiments.continuity_laws --seeds 0 1 2
"""

import numpy as np

from applications.experiments import common

NAME = "continuity_laws"
AMPLITUDES = (0.1, 1.0, 10.0)
FACTORS = (1, 2, 4)
# The subsampling part's training: fewer images and epochs than the
# `*_fashion_mnist_cpu` presets (3000 and 3), because Mamba's selective scan
# over 784 steps is slow on CPU; this size runs the whole experiment in
# about 30 minutes on one core.
SUBSAMPLING_IMAGES = 1200
SUBSAMPLING_EPOCHS = 2


def add_arguments(parser):
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=("model", "task", "subsampling"),
        help="Parts to leave out.",
    )
    parser.add_argument(
        "--train-images",
        type=int,
        default=SUBSAMPLING_IMAGES,
        help="Images of the subsampling part's training, a tenth held out "
        f"for validation (default {SUBSAMPLING_IMAGES}).",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=SUBSAMPLING_EPOCHS,
        help=f"Epochs of the subsampling part (default {SUBSAMPLING_EPOCHS}).",
    )


def smooth_signal(seed, batch, length, channels, periods=4.0):
    """Random sums of low-frequency sinusoids, sampled on [0, periods)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, periods, length, endpoint=False)
    x = np.zeros((batch, length, channels))
    for k in range(1, 4):
        amp = rng.normal(size=(batch, 1, channels)) / k
        phase = rng.uniform(0, 2 * np.pi, size=(batch, 1, channels))
        x += amp * np.sin(2 * np.pi * k * t[None, :, None] + phase)
    return x.astype("float32")


def model_continuity_part(args):
    import keras

    from keras_ssm import layers
    from keras_ssm.analysis import model_continuity

    length, refinements = (
        (64, (1, 2, 4))
        if args.quick
        else (
            1024,
            (1, 2, 4, 8, 16),
        )
    )
    makers = {
        "S4D": lambda: layers.S4D(d_state=16),
        # CES at its default ring and alpha range; the refinement scales
        # alpha, CES's step.
        "CES": lambda: layers.CES(),
        "SelectiveSSM": lambda: layers.SelectiveSSM(d_state=16),
    }
    results = {
        "refinements": list(refinements),
        "amplitudes": list(AMPLITUDES),
        "not_available": {},
        "models": {},
    }
    for name, make in makers.items():
        per_seed = []
        for seed in args.seeds:
            keras.utils.set_random_seed(seed)
            x = smooth_signal(seed, 2, length, 8)
            out = model_continuity(
                make(), x, refinements=refinements, amplitudes=AMPLITUDES
            )
            per_seed.append(out["rel_rmse"])
        per_seed = np.stack(per_seed)  # (seeds, amplitudes, refinements)
        cells = [
            [
                common.summarize(per_seed[:, i, j])
                for j in range(len(refinements))
            ]
            for i in range(len(AMPLITUDES))
        ]
        results["models"][name] = {"rel_rmse": cells}
    return results


def model_verdicts(part):
    verdicts = []
    for name, entry in part["models"].items():
        cells = entry["rel_rmse"]
        mid = len(AMPLITUDES) // 2  # amplitude 1
        coarse, fine = cells[mid][0], cells[mid][-2]
        cmp = common.compare(coarse, fine)
        verdicts.append(
            {
                "claim": f"{name}: error shrinks under refinement "
                "(coarsest vs second finest, amplitude 1)",
                **cmp,
            }
        )
        # A linear layer (S4D) has the same relative error at every
        # amplitude; an input-dependent step (SelectiveSSM) need not.
        low, high = cells[0][0], cells[-1][0]
        cmp = common.compare(
            high, low, min_difference=1e-3 * max(low["mean"], 1e-12)
        )
        verdicts.append(
            {
                "claim": f"{name}: coarsest error grows with the amplitude "
                f"({AMPLITUDES[0]:g} -> {AMPLITUDES[-1]:g}; expected for "
                "SelectiveSSM, not for the linear S4D and CES)",
                **cmp,
            }
        )
    for name, reason in part["not_available"].items():
        verdicts.append(
            {"claim": f"{name}: model continuity", "verdict": reason}
        )
    return verdicts


def task_continuity_part(args):
    from keras_ssm import datasets
    from keras_ssm.analysis import task_continuity

    small = args.quick
    loaders = {
        "ETTh1 (OT, 96-step windows)": lambda: datasets.ett.load_data(
            "ETTh1", features="S", input_size=96, horizon=24, download=False
        )[0][0][: 200 if small else None],
        "ListOps (token ids)": lambda: datasets.listops.load_data(
            num_train=50 if small else 2000,
            num_validation=10,
            num_test=10,
            max_length=32 if small else 500,
            min_length=10,
        )[0][0].astype("float64"),
        "sequential Fashion-MNIST": lambda: datasets.fashion_mnist.load_data(
            max_train=100 if small else 3000, max_test=10
        )[0][0],
        "Pathfinder 32 px (generated)": lambda: datasets.pathfinder.load_data(
            image_size=32,
            num_train=20 if small else 500,
            num_validation=4,
            num_test=4,
        )[0][0],
    }
    if small:  # generation of the image tasks is the slow part
        loaders.pop("Pathfinder 32 px (generated)")
    results = {}
    for name, load in loaders.items():
        try:
            x = np.asarray(load(), dtype="float64")
        except Exception as error:  # absent files: say so, go on
            results[name] = {"unavailable": f"{type(error).__name__}: {error}"}
            continue
        results[name] = {"continuity": task_continuity(x), "shape": x.shape}
    return results


def build_classifier(preset_name, quick):
    """A preset's classifier accepting any length (for subsampled input)."""
    from keras_ssm.models import SSMBackbone
    from keras_ssm.models import SSMClassifier
    from keras_ssm.models import get_preset
    from keras_ssm.models.recipes import scale_backbone_config

    config = get_preset(preset_name)["model"]["config"]
    backbone_config = dict(config["backbone"], sequence_length=None)
    if quick:
        backbone_config = scale_backbone_config(
            backbone_config, num_layers=1, hidden_dim=8
        )
    backbone = SSMBackbone(**backbone_config)
    head = {k: v for k, v in config.items() if k != "backbone"}
    return SSMClassifier(backbone, **head)


def accuracy_at_rate(model, x, y, factor, batch_size=100):
    """Accuracy on inputs averaged over `factor` steps, dt scaled."""
    from keras import ops

    from keras_ssm.analysis import dt_scaled
    from keras_ssm.analysis import temporal_subsample

    x = temporal_subsample(x, factor)
    correct = 0
    with dt_scaled(model, float(factor)):
        for i in range(0, len(y), batch_size):
            logits = ops.convert_to_numpy(model(x[i : i + batch_size]))
            correct += int((logits.argmax(-1) == y[i : i + batch_size]).sum())
    return correct / len(y)


def subsampling_part(args):
    import keras

    from keras_ssm import datasets
    from keras_ssm.models import get_preset

    if args.quick:
        sizes = {"max_train": 60, "max_test": 20}
    else:
        sizes = {"max_train": args.train_images}
    try:
        data = datasets.load_preset_data(
            "s4d_fashion_mnist_cpu", seed=0, **sizes
        )
    except Exception as error:
        return {"unavailable": f"{type(error).__name__}: {error}"}
    (x_train, y_train), _, (x_test, y_test) = data
    results = {"factors": list(FACTORS), "models": {}}
    for model_name in ("s4d", "mamba"):
        preset_name = f"{model_name}_fashion_mnist_cpu"
        training = dict(get_preset(preset_name)["training"])
        if args.quick:
            training.update(epochs=1, batch_size=30)
        else:
            training["epochs"] = args.epochs
        per_factor = {f: [] for f in FACTORS}
        for seed in args.seeds:
            keras.utils.set_random_seed(seed)
            model = build_classifier(preset_name, args.quick)
            common.fit_preset(model, training, x_train, y_train)
            for factor in FACTORS:
                per_factor[factor].append(
                    accuracy_at_rate(model, x_test, y_test, factor)
                )
        results["models"][model_name] = {
            str(f): common.summarize(v) for f, v in per_factor.items()
        }
    return results


def subsampling_verdicts(part):
    if "unavailable" in part:
        return [
            common.not_measured("temporal subsampling", part["unavailable"])
        ]
    verdicts = []
    drop = {}
    for name, cells in part["models"].items():
        full, quarter = cells["1"], cells[str(FACTORS[-1])]
        drop[name] = {
            "mean": full["mean"] - quarter["mean"],
            "std": float(np.hypot(full["std"], quarter["std"])),
            "n": min(full["n"], quarter["n"]),
        }
    if {"s4d", "mamba"} <= set(drop):
        cmp = common.compare(drop["s4d"], drop["mamba"], higher_is_better=False)
        verdicts.append(
            {
                "claim": "S4D loses less accuracy than Mamba at 1/"
                f"{FACTORS[-1]} rate with dt scaled",
                **cmp,
            }
        )
    return verdicts


def main(argv=None):
    argv, args = common.start(argv, NAME, __doc__, add_arguments)
    result = {
        "experiment": NAME,
        "environment": common.environment(argv, NAME),
        "quick": args.quick,
        "seeds": args.seeds,
        "verdicts": [],
    }
    tables = []
    if "model" not in args.skip:
        part = model_continuity_part(args)
        result["model_continuity"] = part
        result["verdicts"] += model_verdicts(part)
        rows = [
            [name, f"{a:g}"]
            + [common.format_stat(c, 3) for c in entry["rel_rmse"][i]]
            for name, entry in part["models"].items()
            for i, a in enumerate(AMPLITUDES)
        ]
        tables.append(
            (
                "Model continuity: relative RMS error against the finest "
                "refinement",
                ["model", "amplitude"]
                + [f"r={r}" for r in part["refinements"]],
                rows,
            )
        )
    if "task" not in args.skip:
        part = task_continuity_part(args)
        result["task_continuity"] = part
        tables.append(
            (
                "Task continuity (1 - L_Lip / 2 of the standardised data)",
                ["data set", "continuity"],
                [
                    [
                        name,
                        f"{v['continuity']:.4f}"
                        if "continuity" in v
                        else "unavailable: " + v["unavailable"][:80],
                    ]
                    for name, v in part.items()
                ],
            )
        )
    if "subsampling" not in args.skip:
        part = subsampling_part(args)
        result["subsampling"] = part
        result["verdicts"] += subsampling_verdicts(part)
        if "models" in part:
            tables.append(
                (
                    "Sequential Fashion-MNIST test accuracy at reduced rate "
                    "(dt scaled)",
                    ["model"] + [f"1/{f} rate" for f in FACTORS],
                    [
                        [name]
                        + [common.format_stat(cells[str(f)]) for f in FACTORS]
                        for name, cells in part["models"].items()
                    ],
                )
            )

    def plot(figure):
        model_part = result.get("model_continuity")
        sub_part = result.get("subsampling", {})
        axes = figure.add_subplot(1, 2, 1)
        if model_part:
            refinements = model_part["refinements"][:-1]
            for name, entry in model_part["models"].items():
                for i, a in enumerate(AMPLITUDES):
                    common.errorbars(
                        axes,
                        refinements,
                        entry["rel_rmse"][i][:-1],
                        label=f"{name}, amplitude {a:g}",
                        marker="o",
                    )
            axes.set_xscale("log", base=2)
            axes.set_yscale("log")
            axes.legend(fontsize=7)
        axes.set_xlabel("refinement r")
        axes.set_ylabel("relative RMS error vs finest")
        axes = figure.add_subplot(1, 2, 2)
        for name, cells in sub_part.get("models", {}).items():
            common.errorbars(
                axes,
                [1.0 / f for f in FACTORS],
                [cells[str(f)] for f in FACTORS],
                label=name,
                marker="o",
            )
        if sub_part.get("models"):
            axes.legend()
        axes.set_xlabel("sampling rate (fraction of training rate)")
        axes.set_ylabel("test accuracy")

    return common.finish(args, "Continuity laws", result, tables, plot)


if __name__ == "__main__":
    main()
