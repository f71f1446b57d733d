"""Frequency bias of S4D: denoising curves per band, and a long-range task.

*Tuning Frequency Bias of State Space Models* (Yu et al., ICLR 2025) finds
that an SSM fits the low-frequency part of a target before the
high-frequency part, and that two knobs tune this bias: scaling the
imaginary parts of A at initialisation (`freq_scale` of
`keras_ssm.layers.S4D`: < 1 strengthens the low-frequency bias, > 1
weakens or reverses it) and the Sobolev filter (1 + j / J)^beta on the
kernel's frequency response (`sobolev_order`: beta < 0 strengthens, > 0
weakens or reverses). Two parts:

A. Denoising, the paper's image experiment at CPU scale. Fashion-MNIST
   images, averaged over 2 x 2 pixels to 14 x 14 and read row by row (196
   steps), with two sinusoids added along the sequence: a low-frequency
   one (7 cycles per sequence) and a high-frequency one (63 cycles), each
   of amplitude 1 (the images are standardised) with a random phase per
   image. Both frequencies sit halfway between harmonics of the row period
   (14 steps), where the images carry little energy. The model is a
   residual linear denoiser, input + Dense(S4D(Dense(input))), trained on
   the mean squared error to the clean image; its last projection starts
   at zero, so at step 0 it is the identity and each band still holds all
   of its noise. Every `--eval-every` steps we take the rfft of the
   residual (output - clean image) on held-out images and report its
   energy in a band of +-2 bins around each noise frequency, divided by
   the noise energy in that band: the fraction of that noise still left.
   The bias index is the mean over the checkpoints of the first half of
   training of log10(low-band fraction / high-band fraction): negative
   when the low-frequency noise is removed first. Settings: the default
   S4D and, fixed before the reported runs, `freq_scale` 1/3 and 10 (the
   paper's denoising scales pi/3 and 10 pi against pi) and
   `sobolev_order` -2, -1, 1, 2 (the paper's range of beta is -1..1; this
   library's filter divides by the number of rfft bins, so the same beta
   tilts about twice as strongly as the paper's LRA code).
B. Sequential Fashion-MNIST (784 steps) with the `s4d_fashion_mnist_cpu`
   preset on a subset of the images (`--fmnist-train`, `--fmnist-test`)
   and `--fmnist-epochs` epochs: the default S4D against S4D tuned with a
   setting fixed in advance, `freq_scale` 3 (`--tuned-freq-scale`,
   `--tuned-sobolev-order`), the value of the paper's reference
   configuration for the grayscale sequential-image task (sCIFAR); test
   accuracy mean +- std over seeds. The preset's other settings are kept.

Example:

    python -m applications.experiments.frequency_bias --seeds 0 1 2
"""

import math
import time

import numpy as np

from applications.experiments import common

NAME = "frequency_bias"
SIDE = 14  # images averaged to 14 x 14: sequences of 196 steps
LENGTH = SIDE * SIDE
LOW_FREQUENCY = 7  # cycles per sequence: half the row frequency
HIGH_FREQUENCY = 63  # 4.5 times the row frequency
BAND_HALF_WIDTH = 2  # rfft bins on each side of a noise frequency
# name: (freq_scale, sobolev_order, the paper's expected direction)
SETTINGS = {
    "default": (1.0, 0.0, None),
    "freq_scale=1/3": (1.0 / 3.0, 0.0, "strengthen"),
    "freq_scale=10": (10.0, 0.0, "weaken"),
    "sobolev_order=-2": (1.0, -2.0, "strengthen"),
    "sobolev_order=-1": (1.0, -1.0, "strengthen"),
    "sobolev_order=+1": (1.0, 1.0, "weaken"),
    "sobolev_order=+2": (1.0, 2.0, "weaken"),
}
QUICK_SETTINGS = ("default", "freq_scale=10", "sobolev_order=+2")
FMNIST_PRESET = "s4d_fashion_mnist_cpu"


def add_arguments(parser):
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=("denoising", "fashion_mnist"),
        help="Parts to leave out.",
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="Denoising steps (300)."
    )
    parser.add_argument(
        "--eval-every",
        type=int,
        default=None,
        help="Denoising steps between checkpoints (10).",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=1e-3,
        help="Adam learning rate of the denoiser.",
    )
    parser.add_argument(
        "--tuned-freq-scale",
        type=float,
        default=3.0,
        help="freq_scale of the tuned S4D on sequential Fashion-MNIST (3, "
        "the paper's sCIFAR setting).",
    )
    parser.add_argument(
        "--tuned-sobolev-order",
        type=float,
        default=0.0,
        help="sobolev_order of the tuned S4D on sequential Fashion-MNIST.",
    )
    parser.add_argument("--fmnist-train", type=int, default=None)
    parser.add_argument("--fmnist-test", type=int, default=None)
    parser.add_argument("--fmnist-epochs", type=int, default=None)


# -- part A: denoising ---------------------------------------------------------


def downsample(images):
    """(n, 784, 1) row-major 28 x 28 images -> (n, 196, 1), 2 x 2 means."""
    images = np.asarray(images, dtype="float64").reshape(-1, SIDE, 2, SIDE, 2)
    return images.mean(axis=(2, 4)).reshape(-1, LENGTH, 1).astype("float32")


def sinusoid_noise(count, rng, length=LENGTH):
    """Unit sinusoids at the two noise frequencies, random phases.

    Returns:
        `(low, high)`, float64 arrays of shape (count, length).
    """
    t = np.arange(length)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=(count, 2))
    low = np.sin(2 * np.pi * LOW_FREQUENCY * t / length + phases[:, :1])
    high = np.sin(2 * np.pi * HIGH_FREQUENCY * t / length + phases[:, 1:])
    return low, high


def band_energy(signal, frequency, half_width=BAND_HALF_WIDTH):
    """Mean energy of `signal` in the rfft bins frequency +- half_width.

    Args:
        signal: array of shape (batch, length) or (batch, length, 1).
        frequency: the band's centre, in cycles per sequence (an rfft bin).
        half_width: bins on each side.

    Returns:
        The mean over the batch of sum |rfft(signal)[bin]|^2 over the band.
    """
    signal = np.asarray(signal, dtype="float64")
    if signal.ndim == 3:
        signal = signal[..., 0]
    spectrum = np.abs(np.fft.rfft(signal, axis=-1)) ** 2
    lo, hi = frequency - half_width, frequency + half_width + 1
    if lo < 0 or hi > spectrum.shape[-1]:
        raise ValueError(
            f"band {frequency} +- {half_width} lies outside the "
            f"{spectrum.shape[-1]} rfft bins."
        )
    return float(spectrum[:, lo:hi].sum(axis=-1).mean())


def build_denoiser(freq_scale, sobolev_order, width, d_state):
    """input + Dense(S4D(Dense(input))): a linear, residual denoiser.

    The correction's last projection starts at zero, so the untrained model
    is the identity: each band's error starts at its noise.
    """
    import keras

    from keras_ssm import layers

    inputs = keras.Input((LENGTH, 1))
    hidden = keras.layers.Dense(width)(inputs)
    hidden = layers.S4D(
        d_state=d_state,
        freq_scale=freq_scale,
        sobolev_order=sobolev_order,
        D_initializer="zeros",  # the outer skip is the identity path
    )(hidden)
    correction = keras.layers.Dense(1, kernel_initializer="zeros")(hidden)
    return keras.Model(inputs, keras.layers.Add()([inputs, correction]))


def denoising_run(setting, seed, data, sizes, learning_rate):
    """Trains one denoiser; the noise left per band at each checkpoint."""
    import keras
    from keras import ops

    freq_scale, sobolev_order, _ = SETTINGS[setting]
    x_train, x_eval = data
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_denoiser(
        freq_scale, sobolev_order, sizes["width"], sizes["d_state"]
    )
    model.compile(keras.optimizers.Adam(learning_rate), "mse")
    eval_low, eval_high = sinusoid_noise(
        len(x_eval), np.random.default_rng(10_000 + seed)
    )
    noisy_eval = (x_eval[..., 0] + eval_low + eval_high)[..., None]
    noisy_eval = noisy_eval.astype("float32")
    noise_low = band_energy(eval_low, LOW_FREQUENCY)
    noise_high = band_energy(eval_high, HIGH_FREQUENCY)
    curve = {"step": [], "low": [], "high": [], "mse": []}
    for step in range(sizes["steps"] + 1):
        if step % sizes["eval_every"] == 0:
            output = ops.convert_to_numpy(model(noisy_eval))
            residual = output.astype("float64") - x_eval
            curve["step"].append(step)
            curve["low"].append(
                band_energy(residual, LOW_FREQUENCY) / noise_low
            )
            curve["high"].append(
                band_energy(residual, HIGH_FREQUENCY) / noise_high
            )
            curve["mse"].append(float(np.mean(residual**2)))
        if step == sizes["steps"]:
            break
        index = rng.integers(0, len(x_train), sizes["batch_size"])
        low, high = sinusoid_noise(len(index), rng)
        clean = x_train[index]
        noisy = (clean[..., 0] + low + high)[..., None].astype("float32")
        model.train_on_batch(noisy, clean)
    return curve


def bias_index(curve, steps):
    """Mean log10(low / high) over the checkpoints in (0, steps / 2]."""
    values = [
        math.log10(low / high)
        for step, low, high in zip(curve["step"], curve["low"], curve["high"])
        if 0 < step <= steps / 2
    ]
    if not values:
        raise ValueError("no checkpoint in the first half of training.")
    return float(np.mean(values))


def denoising_part(args):
    from keras_ssm import datasets

    if args.quick:
        sizes = dict(
            num_train=64, num_eval=16, steps=8, eval_every=4, batch_size=8
        )
        sizes.update(width=4, d_state=8)
        settings = QUICK_SETTINGS
    else:
        sizes = dict(num_train=3000, num_eval=300, steps=300, eval_every=10)
        sizes.update(batch_size=32, width=16, d_state=64)
        settings = tuple(SETTINGS)
    sizes["steps"] = args.steps or sizes["steps"]
    sizes["eval_every"] = args.eval_every or sizes["eval_every"]
    try:
        (x_train, _), _, (x_eval, _) = datasets.fashion_mnist.load_data(
            max_train=sizes["num_train"], max_test=sizes["num_eval"]
        )
    except Exception as error:  # absent files: say so, go on
        return {"unavailable": f"{type(error).__name__}: {error}"}
    data = (downsample(x_train), downsample(x_eval).astype("float64"))
    part = {
        "sizes": sizes,
        "learning_rate": args.learning_rate,
        "length": LENGTH,
        "low_frequency": LOW_FREQUENCY,
        "high_frequency": HIGH_FREQUENCY,
        "band_half_width": BAND_HALF_WIDTH,
        "settings": {},
    }
    for setting in settings:
        curves = [
            denoising_run(setting, seed, data, sizes, args.learning_rate)
            for seed in args.seeds
        ]
        steps = curves[0]["step"]
        cell = {
            "freq_scale": SETTINGS[setting][0],
            "sobolev_order": SETTINGS[setting][1],
            "expected": SETTINGS[setting][2],
            "steps": steps,
            "curves": curves,
            "bias_index": common.summarize(
                [bias_index(c, sizes["steps"]) for c in curves]
            ),
            "final_mse": common.summarize([c["mse"][-1] for c in curves]),
        }
        for band in ("low", "high"):
            cell[band] = [
                common.summarize([c[band][i] for c in curves])
                for i in range(len(steps))
            ]
        part["settings"][setting] = cell
    return part


def denoising_verdicts(part):
    if "unavailable" in part:
        return [common.not_measured("denoising", part["unavailable"])]
    cells = part["settings"]
    base = cells["default"]["bias_index"]
    zero = common.summarize([0.0] * base["n"])
    verdicts = [
        {
            "claim": "default S4D removes the low-frequency noise first "
            "(bias index < 0)",
            **common.compare(base, zero, higher_is_better=False),
        }
    ]
    for setting, cell in cells.items():
        if cell["expected"] is None:
            continue
        stat = cell["bias_index"]
        if cell["expected"] == "strengthen":
            verdicts.append(
                {
                    "claim": f"{setting} strengthens the low-frequency bias "
                    "(bias index below the default's)",
                    **common.compare(stat, base, higher_is_better=False),
                }
            )
        else:
            verdicts.append(
                {
                    "claim": f"{setting} weakens the low-frequency bias "
                    "(bias index above the default's)",
                    **common.compare(stat, base),
                }
            )
            verdicts.append(
                {
                    "claim": f"{setting} reverses it (bias index > 0: the "
                    "high-frequency noise is removed first)",
                    **common.compare(stat, zero),
                }
            )
    return verdicts


def denoising_table(part):
    steps = part["sizes"]["steps"]
    cells = part["settings"]
    any_cell = next(iter(cells.values()))
    # The checkpoint nearest a quarter of training: early, both bands moving.
    index = int(np.argmin(np.abs(np.asarray(any_cell["steps"]) - steps / 4)))
    at = any_cell["steps"][index]
    rows = [
        [
            setting,
            f"{cell['freq_scale']:.3g}",
            f"{cell['sobolev_order']:+g}",
            common.format_stat(cell["bias_index"], 3),
            common.format_stat(cell["low"][index], 3),
            common.format_stat(cell["high"][index], 3),
            common.format_stat(cell["final_mse"], 3),
        ]
        for setting, cell in cells.items()
    ]
    header = [
        "setting",
        "freq_scale",
        "sobolev_order",
        "bias index (mean log10 low/high, first half)",
        f"low-band noise left, step {at}",
        f"high-band noise left, step {at}",
        f"eval MSE, step {steps}",
    ]
    return (
        "Denoising: fraction of each band's noise left in the output "
        f"(low {LOW_FREQUENCY}, high {HIGH_FREQUENCY} cycles per "
        f"{LENGTH} steps)",
        header,
        rows,
    )


# -- part B: sequential Fashion-MNIST -----------------------------------------


def classifier_run(s4d_kwargs, seed, splits, training, overrides):
    import keras

    from keras_ssm.models import SSMClassifier

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits
    keras.utils.set_random_seed(seed)
    kwargs = dict(overrides)
    if s4d_kwargs:
        kwargs["block_kwargs"] = dict(s4d_kwargs)
    model = SSMClassifier.from_preset(FMNIST_PRESET, **kwargs)
    _, seconds = common.fit_preset(model, training, x_train, y_train)
    batch_size = training["batch_size"]
    val = model.evaluate(x_val, y_val, batch_size=batch_size, verbose=0)[1]
    test = model.evaluate(x_test, y_test, batch_size=batch_size, verbose=0)[1]
    return {
        "validation_accuracy": float(val),
        "test_accuracy": float(test),
        "train_seconds_loaded_machine": seconds,
    }


def fashion_mnist_part(args):
    from keras_ssm import datasets
    from keras_ssm.models import get_preset

    training = dict(get_preset(FMNIST_PRESET)["training"])
    if args.quick:
        sizes = dict(max_train=40, max_test=20)
        training.update(epochs=1, batch_size=20)
        overrides = {"num_layers": 1, "hidden_dim": 8}
    else:
        sizes = dict(max_train=800, max_test=500)
        training.update(epochs=2)
        overrides = {}
    sizes["max_train"] = args.fmnist_train or sizes["max_train"]
    sizes["max_test"] = args.fmnist_test or sizes["max_test"]
    training["epochs"] = args.fmnist_epochs or training["epochs"]
    tuned = {"freq_scale": args.tuned_freq_scale}
    if args.tuned_sobolev_order:
        tuned["sobolev_order"] = args.tuned_sobolev_order
    try:
        splits = datasets.load_preset_data(FMNIST_PRESET, seed=0, **sizes)
    except Exception as error:
        return {"unavailable": f"{type(error).__name__}: {error}"}
    tuned_name = ", ".join(f"{k}={v:g}" for k, v in tuned.items())
    part = {
        "preset": FMNIST_PRESET,
        "data": sizes,
        "training": training,
        "overrides": overrides,
        "num_train": len(splits[0][1]),
        "num_validation": len(splits[1][1]),
        "num_test": len(splits[2][1]),
        "tuned": tuned_name,
        "tuned_s4d_kwargs": tuned,
        "runs": {"default": {}, tuned_name: {}},
    }
    for seed in args.seeds:
        for name, s4d_kwargs in (("default", {}), (tuned_name, tuned)):
            part["runs"][name][str(seed)] = classifier_run(
                s4d_kwargs, seed, splits, training, overrides
            )
    part["summary"] = {
        name: {
            key: common.summarize([run[key] for run in by_seed.values()])
            for key in (
                "test_accuracy",
                "validation_accuracy",
                "train_seconds_loaded_machine",
            )
        }
        for name, by_seed in part["runs"].items()
    }
    return part


def fashion_mnist_verdicts(part):
    if "unavailable" in part:
        return [
            common.not_measured("sequential Fashion-MNIST", part["unavailable"])
        ]
    tuned = part["tuned"]
    summary = part["summary"]
    return [
        {
            "claim": f"sequential Fashion-MNIST: tuned S4D ({tuned}, fixed "
            "in advance) beats the default on test accuracy",
            **common.compare(
                summary[tuned]["test_accuracy"],
                summary["default"]["test_accuracy"],
            ),
        }
    ]


def draw(figure, result):
    """The plot: noise left per band against step; the accuracies."""
    figure.set_size_inches(15, 5)
    denoising = result.get("denoising", {})
    for column, band in enumerate(("low", "high")):
        axes = figure.add_subplot(1, 3, column + 1)
        for setting, cell in denoising.get("settings", {}).items():
            mean = np.array([c["mean"] for c in cell[band]])
            std = np.array([c["std"] for c in cell[band]])
            (line,) = axes.plot(cell["steps"], mean, label=setting)
            axes.fill_between(
                cell["steps"],
                np.maximum(mean - std, 1e-12),
                mean + std,
                color=line.get_color(),
                alpha=0.2,
            )
        frequency = LOW_FREQUENCY if band == "low" else HIGH_FREQUENCY
        axes.set_yscale("log")
        axes.set_xlabel("training step")
        axes.set_ylabel("fraction of the band's noise left")
        axes.set_title(f"{band}-frequency band ({frequency} cycles / {LENGTH})")
        if denoising.get("settings"):
            axes.legend(fontsize=7)
            # Mean - std can fall below 0: the log axis keeps to the means'
            # range, and a band reaching below it is clipped.
            floor = min(
                c["mean"]
                for cell in denoising["settings"].values()
                for c in cell[band]
            )
            axes.set_ylim(bottom=0.5 * floor)
    axes = figure.add_subplot(1, 3, 3)
    summary = result.get("fashion_mnist", {}).get("summary", {})
    names = list(summary)
    axes.bar(
        range(len(names)),
        [summary[n]["test_accuracy"]["mean"] for n in names],
        yerr=[summary[n]["test_accuracy"]["std"] for n in names],
        capsize=4,
    )
    axes.set_xticks(range(len(names)))
    axes.set_xticklabels(names, fontsize=8)
    axes.set_ylabel("test accuracy")
    axes.set_title("sequential Fashion-MNIST")


def run_part(result, name, args):
    """Measures part `name` ("denoising", "fashion_mnist"), timed, into
    `result` with its verdicts; returns the part."""
    measure, verdicts = {
        "denoising": (denoising_part, denoising_verdicts),
        "fashion_mnist": (fashion_mnist_part, fashion_mnist_verdicts),
    }[name]
    start = time.perf_counter()
    part = measure(args)
    part["seconds_loaded_machine"] = time.perf_counter() - start
    result[name] = part
    result["verdicts"] += verdicts(part)
    return part


def main(argv=None):
    argv, args = common.start(argv, NAME, __doc__, add_arguments)
    for option in ("steps", "eval_every", "fmnist_train", "fmnist_test"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise ValueError(f"`--{option.replace('_', '-')}` must be >= 1.")
    result = {
        "experiment": NAME,
        "environment": common.environment(argv, NAME),
        "quick": args.quick,
        "seeds": args.seeds,
        "timing_note": "seconds measured on a shared, loaded machine",
        "verdicts": [],
    }
    tables = []
    if "denoising" not in args.skip:
        part = run_part(result, "denoising", args)
        if "settings" in part:
            tables.append(denoising_table(part))
    if "fashion_mnist" not in args.skip:
        part = run_part(result, "fashion_mnist", args)
        if "summary" in part:
            rows = [
                [
                    name,
                    common.format_stat(cells["test_accuracy"]),
                    common.format_stat(cells["validation_accuracy"]),
                    common.format_stat(
                        cells["train_seconds_loaded_machine"], 3
                    ),
                ]
                for name, cells in part["summary"].items()
            ]
            tables.append(
                (
                    f"Sequential Fashion-MNIST ({part['num_train']} train / "
                    f"{part['num_validation']} validation / "
                    f"{part['num_test']} test images, "
                    f"{part['training']['epochs']} epochs, {FMNIST_PRESET})",
                    [
                        "S4D",
                        "test accuracy",
                        "validation accuracy",
                        "train seconds (loaded machine)",
                    ],
                    rows,
                )
            )

    def plot(figure):
        draw(figure, result)

    return common.finish(
        args,
        "Frequency bias of S4D (denoising per band; sequential Fashion-MNIST)",
        result,
        tables,
        plot,
    )


if __name__ == "__main__":
    main()
