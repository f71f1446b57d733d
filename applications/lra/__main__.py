"""Train and evaluate an LRA classifier from the command line.

Example:

    python -m applications.lra --task listops --model etsmlp_gate \\
        --preset cpu --lipschitz 0.1 --backend jax

Writes checkpoints (`best.keras`, `last.keras`), `history.csv`,
`result.json` and the trained model as a preset folder (`preset/`, which
`SSMClassifier.from_preset` loads on any backend) under `--output-dir`
(default `runs/lra/<task>-<model>-<preset>`), prints a final `Test
accuracy:` line, and continues an interrupted run with `--resume`.
`--evaluate-preset FOLDER` evaluates a saved preset without training.
"""

import argparse
import os
import sys

from applications.common import training
from applications.common.arguments import add_renamed_option

# Under a wall-clock budget the clock ends training; the epoch count only
# has to be out of reach.
BUDGET_EPOCH_CAP = 1000


def parse_args(argv=None):
    """The CLI options (shared training options plus the LRA ones)."""
    from applications.lra.tasks import BACKBONES
    from applications.lra.tasks import PRESET_SIZES
    from applications.lra.tasks import TASKS

    parser = argparse.ArgumentParser(
        prog="python -m applications.lra",
        description="Long Range Arena classification with keras-ssm.",
    )
    parser.add_argument("--task", required=True, choices=tuple(TASKS))
    parser.add_argument("--model", required=True, choices=BACKBONES)
    parser.add_argument("--preset", default="cpu", choices=PRESET_SIZES)
    parser.add_argument(
        "--lipschitz",
        type=training.finite_float,
        default=0.0,
        help="Weight of the Lipschitz (data continuity) penalty after the "
        "embedding; 0 leaves it out, negative values suit Transformers.",
    )
    parser.add_argument(
        "--lipschitz-normalize",
        action="store_true",
        help="Rescale the embedding to [0, 1] before the penalty.",
    )
    parser.add_argument("--depth", type=training.positive_int, default=None)
    add_renamed_option(
        parser,
        "--hidden-dim",
        "--d-model",
        type=training.positive_int,
        default=None,
        help="Model width (default: the preset's).",
    )
    parser.add_argument(
        "--learning-rate", type=training.positive_float, default=None
    )
    parser.add_argument(
        "--max-train",
        type=training.positive_int,
        default=None,
        help="Use at most this many training examples.",
    )
    parser.add_argument(
        "--max-eval",
        type=training.positive_int,
        default=None,
        help="Use at most this many validation and test examples.",
    )
    parser.add_argument(
        "--max-length",
        type=training.positive_int,
        default=None,
        help="Token length of ListOps/Text/Retrieval (overrides the preset).",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="A released LRA directory to load instead of generating "
        "(ListOps: the folder of basic_*.tsv; Pathfinder: a "
        "curv_contour_length_* folder; Retrieval: the tsv_data folder).",
    )
    parser.add_argument(
        "--time-budget",
        type=training.nonnegative_float,
        default=None,
        metavar="SECONDS",
        help="Train for this wall-clock time, with the learning-rate "
        "schedule spread over it (default: the preset's budget, 300 s for "
        "the ListOps cpu presets; none when --epochs is given). 0 turns it "
        "off; with --epochs as well, the epochs are a cap.",
    )
    parser.add_argument(
        "--evaluate-preset",
        default=None,
        metavar="FOLDER",
        help="Evaluate the trained model of a preset folder (e.g. the "
        "`preset/` of an earlier run) on the task's test set, without "
        "training.",
    )
    training.add_training_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    training.select_backend(argv)
    args = parse_args(argv)
    if args.evaluate_preset and not os.path.isdir(args.evaluate_preset):
        raise training.UsageError(
            f"--evaluate-preset: {args.evaluate_preset} is not a folder."
        )
    # Before any data work: a bad directory fails at once, and a finished
    # run is left as it is.
    output_dir = training.check_output_dir(
        args.output_dir or f"runs/lra/{args.task}-{args.model}-{args.preset}"
    )
    paths = training.RunPaths(output_dir)

    import keras

    from applications.common import time_budget
    from applications.common.checkpoints import earlier_progress
    from applications.lra import tasks
    from keras_ssm import distribute
    from keras_ssm.models import SSMBackbone
    from keras_ssm.models import SSMClassifier
    from keras_ssm.models.recipes import scale_backbone_config

    keras.utils.set_random_seed(args.seed)
    preset = tasks.get_preset(
        tasks.preset_name(args.task, args.model, args.preset)
    )
    model_cfg, train_cfg, data_cfg = (
        preset["model"]["config"],
        preset["training"],
        preset["data"],
    )
    if args.data_dir:
        data_cfg["directory"] = args.data_dir
    if args.max_length is not None:
        data_cfg["max_length"] = args.max_length
        if "min_length" in data_cfg:
            data_cfg["min_length"] = min(
                data_cfg["min_length"], args.max_length
            )
    # Generated tasks: generate only what will be used.
    for key, limit in (
        ("num_train", args.max_train),
        ("num_validation", args.max_eval),
        ("num_test", args.max_eval),
    ):
        if limit is not None and key in data_cfg:
            data_cfg[key] = min(data_cfg[key], limit)
    for key, value in (
        ("epochs", args.epochs),
        ("batch_size", args.batch_size),
        ("learning_rate", args.learning_rate),
    ):
        if value is not None:
            train_cfg[key] = value
    length = model_cfg["backbone"]["sequence_length"]
    if "max_length" in data_cfg:
        length = data_cfg["max_length"]
    elif "image_size" in data_cfg:
        length = data_cfg["image_size"] ** 2
    model_cfg["backbone"] = scale_backbone_config(
        model_cfg["backbone"],
        num_layers=args.depth,
        hidden_dim=args.hidden_dim,
        sequence_length=length,
        lipschitz_weight=args.lipschitz,
        lipschitz_normalize=args.lipschitz_normalize,
    )

    budget = time_budget.resolve_budget(
        args.time_budget, args.epochs, train_cfg, distribute.process_count()
    )
    epochs = train_cfg["epochs"]
    if budget:  # the clock ends the run; epochs are only a cap
        epochs = args.epochs or BUDGET_EPOCH_CAP
    if args.resume and paths.is_finished(epochs):
        training.say(
            f"{output_dir} holds a finished run (result.json); it is left "
            "untouched. Ask for more --epochs (or --time-budget) to continue "
            "it, or drop --resume to train it again."
        )
        return training.read_json(paths.result).get("test_accuracy")
    splits = tasks.load_task_data(data_cfg, seed=args.seed)
    splits = tasks.truncate_splits(
        splits,
        max_train=args.max_train,
        max_validation=args.max_eval,
        max_test=args.max_eval,
    )
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        splits["train"],
        splits["validation"],
        splits["test"],
    )
    if model_cfg["retrieval"]:
        x_train, x_val, x_test = list(x_train), list(x_val), list(x_test)
    num_classes = model_cfg["num_classes"]
    for split, labels in (("train", y_train), ("validation", y_val)):
        training.check_labels(labels, num_classes, f"{args.task} {split}")
    training.check_labels(y_test, num_classes, f"{args.task} test")
    num_train = len(y_train)
    batch_size = train_cfg["batch_size"]
    steps = args.steps_per_epoch or -(-num_train // batch_size)
    plan = f"{epochs} epochs"
    if budget:
        plan = f"{training.format_seconds(budget)} of training"
    training.say(
        f"Task {args.task} ({num_train} train / {len(y_val)} validation / "
        f"{len(y_test)} test, length {length}), model {args.model}, preset "
        f"{args.preset}, backend {keras.backend.backend()}, {plan}."
    )

    if args.evaluate_preset:
        return evaluate_preset(args.evaluate_preset, x_test, y_test, batch_size)

    with training.data_parallel_scope(args.data_parallel, args.num_devices):
        backbone = SSMBackbone(**model_cfg["backbone"])
        model = SSMClassifier(
            backbone, **{k: v for k, v in model_cfg.items() if k != "backbone"}
        )
        callbacks, compile_cfg = [], train_cfg
        if budget:
            compile_cfg = time_budget.budget_compile_settings(train_cfg)
            spent = 0.0
            if args.resume:
                spent = earlier_progress(paths)[1]
            callbacks.append(
                time_budget.WallClockBudget(budget, train_cfg, elapsed=spent)
            )
        model.compile_from_preset(
            compile_cfg, steps_per_epoch=steps, epochs=epochs
        )
        history, seconds = training.fit(
            model,
            (x_train, y_train),
            validation_data=(x_val, y_val),
            epochs=epochs,
            callbacks=callbacks,
            paths=paths,
            resume=args.resume,
            steps_per_epoch=args.steps_per_epoch,
            verbose=args.verbose,
            batch_size=batch_size,
            monitor="val_accuracy",
            mode="max",
        )
        test_loss, test_accuracy = model.evaluate(
            x_test, y_test, batch_size=batch_size, verbose=0
        )
    counts = [int((y_test == c).sum()) for c in range(int(y_test.max()) + 1)]
    majority = max(counts) / len(y_test)
    # The trained model as a preset folder: config, weights and metadata
    # that `SSMClassifier.from_preset(folder)` loads on any backend.
    preset_dir = os.path.join(paths.output_dir, "preset")
    if training.is_chief():
        model.save_to_preset(preset_dir)
    training.say(
        f"Test accuracy: {test_accuracy:.4f} (loss {test_loss:.4f}; "
        f"majority class {majority:.4f}) after "
        f"{training.format_seconds(seconds)} of training "
        f"({len(history.get('loss', []))} epochs)."
    )
    training.write_result(
        paths.result,
        {
            "task": args.task,
            "model": args.model,
            "preset": args.preset,
            "preset_name": f"{args.model}_{args.task}_{args.preset}",
            "lipschitz": args.lipschitz,
            "sequence_length": length,
            "num_train": num_train,
            "num_parameters": model.count_params(),
            "model_config": model_cfg,
            "training_config": train_cfg,
            "data_config": data_cfg,
            "test_accuracy": test_accuracy,
            "test_loss": test_loss,
            "majority_class_accuracy": majority,
            "train_seconds": seconds,
            "time_budget_seconds": budget,
            "stopped_early": bool(callbacks and callbacks[0].exhausted),
            "epochs_run": len(history.get("loss", [])),
            "history": history,
            "preset_folder": preset_dir,
        },
    )
    training.say(f"Result written to {paths.result}")
    return test_accuracy


def evaluate_preset(folder, x_test, y_test, batch_size):
    """Test accuracy of the trained model saved in a preset folder."""
    from keras_ssm.models import SSMClassifier

    model = SSMClassifier.from_preset(folder)
    model.compile(**model._default_compile())
    test_loss, test_accuracy = model.evaluate(
        x_test, y_test, batch_size=batch_size, verbose=0
    )
    training.say(
        f"Test accuracy: {test_accuracy:.4f} (loss {test_loss:.4f}) of the "
        f"preset {folder}."
    )
    return test_accuracy


if __name__ == "__main__":
    training.run_cli(main)
