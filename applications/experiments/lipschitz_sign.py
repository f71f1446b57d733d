"""The sign of the Lipschitz regularizer, on generated ListOps.

*Data Continuity Matters* (Qu et al., ICLR 2023) adds lambda * L_Lip of the
embedded sequence to the loss and claims that a negative lambda helps
Transformers and a positive one helps SSMs. Here, on generated ListOps
(the `*_listops_cpu` presets):

1. lambda is chosen on validation accuracy, separately for each model and
   sign, from a grid over several orders of magnitude (seed 0);
2. the Transformer with -lambda / 0 / +lambda and S4D with +lambda / 0 /
   -lambda are trained on every seed; test accuracy mean +- std;
3. the ratio lambda * penalty / task loss on the validation set, so that one
   can see whether the penalty was comparable to the task loss;
4. the paper's frequency reading: for sequences x with normalised power
   spectrum p(xi), mean (x[t+1] - x[t])^2 / mean x^2 = E_p[4 sin^2(pi xi)],
   about 4 pi^2 E_p[xi^2] when the power is at low frequencies. Both sides
   are computed from the trained models' real embeddings (padding
   included).

The ETTh1 forecasting half of the claim (horizons 168 and 720) is not in
this script.

Example:

    python -m applications.experiments.lipschitz_sign --seeds 0 1 2
"""

import numpy as np

from applications.experiments import common

NAME = "lipschitz_sign"
GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
# The sign the paper recommends for each model.
HELPFUL_SIGN = {"transformer": -1.0, "s4d": 1.0}


def add_arguments(parser):
    parser.add_argument(
        "--grid",
        type=float,
        nargs="+",
        default=None,
        help=f"Magnitudes of lambda to choose from (default {GRID}).",
    )


def setup(model_name, args):
    from keras_ssm import datasets
    from keras_ssm.models import get_preset

    preset = get_preset(f"{model_name}_listops_cpu")
    data, training = dict(preset["data"]), dict(preset["training"])
    overrides = {}
    if args.quick:
        data.update(num_train=64, num_validation=32, num_test=32, max_length=32)
        data["min_length"] = min(data["min_length"], 32)
        training.update(epochs=1, batch_size=16)
        overrides = {"num_layers": 1, "hidden_dim": 16}
    overrides["sequence_length"] = data["max_length"]
    splits = datasets.load_preset_data(data, seed=0)
    return splits, training, overrides


def embedding_model(model):
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


def train(model_name, weight, seed, splits, training, overrides):
    """One run; returns accuracies, loss ratio and frequency reading."""
    import keras
    from keras import ops

    from keras_ssm.models import SSMClassifier
    from keras_ssm.regularizers import lipschitz_penalty

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits
    keras.utils.set_random_seed(seed)
    model = SSMClassifier.from_preset(
        f"{model_name}_listops_cpu",
        lipschitz_weight=weight if weight else None,
        **overrides,
    )
    batch_size = training["batch_size"]
    steps = -(-len(y_train) // batch_size)
    model.compile_from_preset(training, steps_per_epoch=steps)
    model.fit(
        x_train,
        y_train,
        epochs=training["epochs"],
        batch_size=batch_size,
        verbose=0,
    )
    val_accuracy = float(
        model.evaluate(x_val, y_val, batch_size=batch_size, verbose=0)[1]
    )
    test_accuracy = float(
        model.evaluate(x_test, y_test, batch_size=batch_size, verbose=0)[1]
    )
    embeddings = ops.convert_to_numpy(embedding_model(model)(x_val))
    logits = model.predict(x_val, batch_size=batch_size, verbose=0)
    task_loss = float(
        ops.convert_to_numpy(
            keras.losses.sparse_categorical_crossentropy(
                y_val, logits, from_logits=True
            )
        ).mean()
    )
    penalty = float(
        ops.convert_to_numpy(lipschitz_penalty(ops.array(embeddings)))
    )
    return {
        "model": model_name,
        "weight": weight,
        "seed": seed,
        "val_accuracy": val_accuracy,
        "test_accuracy": test_accuracy,
        "task_loss": task_loss,
        "penalty": penalty,
        "penalty_over_task_loss": abs(weight) * penalty / task_loss,
        "frequency": frequency_reading(embeddings),
    }


def main(argv=None):
    argv = common.start(argv)
    args = common.parse_args(
        NAME,
        "Sign of the Lipschitz regularizer for the Transformer and S4D on "
        "generated ListOps.",
        argv,
        add_arguments,
    )
    grid = args.grid or ((1.0,) if args.quick else GRID)
    selection, runs, summary, verdicts = [], [], {}, []
    for model_name, helpful in HELPFUL_SIGN.items():
        splits, training, overrides = setup(model_name, args)
        chosen = {}
        for sign in (helpful, -helpful):
            trials = [
                train(
                    model_name,
                    sign * m,
                    args.seeds[0],
                    splits,
                    training,
                    overrides,
                )
                for m in grid
            ]
            selection += trials
            best = max(trials, key=lambda r: r["val_accuracy"])
            chosen[sign] = best["weight"]
        summary[model_name] = {}
        for weight in (chosen[helpful], 0.0, chosen[-helpful]):
            mine = [
                train(model_name, weight, s, splits, training, overrides)
                for s in args.seeds
            ]
            runs += mine
            summary[model_name][f"{weight:+g}"] = {
                "weight": weight,
                "test_accuracy": common.summarize(
                    [r["test_accuracy"] for r in mine]
                ),
                "penalty_over_task_loss": common.summarize(
                    [r["penalty_over_task_loss"] for r in mine]
                ),
            }
        cells = summary[model_name]
        weight = chosen[helpful]
        cmp = common.compare(
            cells[f"{weight:+g}"]["test_accuracy"],
            cells["+0"]["test_accuracy"],
        )
        verdicts.append(
            {
                "claim": f"lambda={weight:+g} helps {model_name} on "
                "ListOps (test accuracy vs lambda=0)",
                **cmp,
            }
        )
        cmp = common.compare(
            cells[f"{chosen[helpful]:+g}"]["test_accuracy"],
            cells[f"{chosen[-helpful]:+g}"]["test_accuracy"],
        )
        verdicts.append(
            {
                "claim": f"{model_name}: the paper's sign beats the other sign",
                **cmp,
            }
        )
    verdicts.append(
        {
            "claim": "ETTh1 horizons 168 and 720",
            "verdict": "not measured by this script",
        }
    )
    freq_rows = [
        [
            r["model"],
            f"{r['weight']:+g}",
            r["seed"],
            f"{r['frequency']['penalty_over_power']:.4g}",
            f"{r['frequency']['four_pi2_E_xi2']:.4g}",
            f"{r['frequency']['E_4sin2']:.4g}",
        ]
        for r in runs
    ]
    result = {
        "experiment": NAME,
        "environment": common.environment(argv, NAME),
        "quick": args.quick,
        "seeds": args.seeds,
        "grid": list(grid),
        "selection": selection,
        "summary": summary,
        "runs": runs,
        "verdicts": verdicts,
    }
    rows = [
        [
            m,
            key,
            common.format_stat(cell["test_accuracy"]),
            common.format_stat(cell["penalty_over_task_loss"], 3),
        ]
        for m, cells in summary.items()
        for key, cell in cells.items()
    ]

    def plot(figure):
        axes = figure.add_subplot(1, 2, 1)
        for m, cells in summary.items():
            keys = list(cells)
            axes.errorbar(
                keys,
                [cells[k]["test_accuracy"]["mean"] for k in keys],
                yerr=[cells[k]["test_accuracy"]["std"] for k in keys],
                marker="o",
                capsize=4,
                label=m,
            )
        axes.set_xlabel("lambda")
        axes.set_ylabel("test accuracy")
        axes.legend()
        axes = figure.add_subplot(1, 2, 2)
        measured = [r["frequency"]["penalty_over_power"] for r in runs]
        predicted = [r["frequency"]["four_pi2_E_xi2"] for r in runs]
        axes.scatter(predicted, measured)
        top = max(measured + predicted)
        axes.plot([0, top], [0, top], "k--")
        axes.set_xlabel("4 pi^2 E_p[xi^2]")
        axes.set_ylabel("L_Lip / mean x^2 of the embeddings")

    common.write_outputs(
        args.output_dir,
        "Lipschitz regularizer sign (ListOps)",
        result,
        [
            (
                "Test accuracy and penalty / task loss",
                ["model", "lambda", "test accuracy", "penalty / task loss"],
                rows,
            ),
            (
                "Frequency reading of the embeddings (validation set)",
                [
                    "model",
                    "lambda",
                    "seed",
                    "L_Lip / mean x^2",
                    "4 pi^2 E_p[xi^2]",
                    "E_p[4 sin^2(pi xi)]",
                ],
                freq_rows,
            ),
        ],
        plot,
    )
    print(f"Results written to {args.output_dir}")
    return result


if __name__ == "__main__":
    main()
