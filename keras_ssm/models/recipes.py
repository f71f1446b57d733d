"""Presets to models and training recipes.

`training_recipe(preset)` turns a preset's `training` settings into an
optimizer (`keras_ssm.optimizers.SSMAdamW`: SSM parameters in their own
group, without weight decay unless the reference decays them) with the
preset's warm-up schedule, plus the batch size and number of epochs.
"""

from keras_ssm import presets as registry
from keras_ssm.utils.validation import check_float
from keras_ssm.utils.validation import check_int


def resolve_training(preset):
    """The training settings of a preset name, or a settings dict as is."""
    if isinstance(preset, str):
        return registry.get_preset(preset)["training"]
    if isinstance(preset, dict):
        return dict(preset)
    raise TypeError(
        "`preset` must be a preset name or a dict of training settings; got "
        f"{type(preset).__name__}."
    )


WARMUP_LENGTHS = ("warmup_steps", "warmup_epochs", "warmup_fraction")


def check_warmup(training):
    """Validates the warm-up settings of a training dict.

    The warm-up's length is given at most once: in steps (`warmup_steps`,
    an int >= 0), in epochs (`warmup_epochs`, >= 0) or as a fraction of
    the whole run (`warmup_fraction`, in [0, 1); the ETSMLP paper warms up
    over the first 10%). `warmup_initial_lr`, the rate the warm-up starts
    from, is in [0, learning_rate].

    Raises:
        ValueError: naming the setting and what it accepts.
    """
    given = [key for key in WARMUP_LENGTHS if training.get(key) is not None]
    if len(given) > 1:
        raise ValueError(
            "Give the warm-up's length once, as one of "
            f"{', '.join(WARMUP_LENGTHS)}; got {given}."
        )
    if training.get("warmup_steps") is not None:
        check_int("warmup_steps", training["warmup_steps"], minimum=0)
    if training.get("warmup_epochs") is not None:
        check_float("warmup_epochs", training["warmup_epochs"], minimum=0.0)
    if training.get("warmup_fraction") is not None:
        check_float(
            "warmup_fraction",
            training["warmup_fraction"],
            minimum=0.0,
            maximum=1.0,
            max_open=True,
        )
    if training.get("warmup_initial_lr") is not None:
        check_float(
            "warmup_initial_lr",
            training["warmup_initial_lr"],
            minimum=0.0,
            maximum=training["learning_rate"],
        )


def warmup_steps(training, steps_per_epoch, total_steps):
    """The warm-up's length in optimizer steps (0 without a warm-up)."""
    if training.get("warmup_fraction") is not None:
        return int(round(training["warmup_fraction"] * total_steps))
    if training.get("warmup_steps") is not None:
        return training["warmup_steps"]
    return int(round((training.get("warmup_epochs") or 0) * steps_per_epoch))


def make_optimizer(training, steps_per_epoch=None, epochs=None):
    """`SSMAdamW` with the schedule of `training` settings.

    Args:
        training: dict with `learning_rate`, `weight_decay`, optional
            `ssm_learning_rate`, `epochs`, `schedule` (`"cosine"`, the
            default, `"linear"` or `"constant"`; see
            `keras_ssm.schedules.warmup_schedule`), the warm-up's length
            as one of `warmup_steps`, `warmup_epochs` or `warmup_fraction`
            (of all training steps, in [0, 1); default: no warm-up),
            `warmup_initial_lr` (the rate the warm-up starts from, in
            [0, learning_rate]; default 0), `final_lr_fraction` (cosine's
            final rate over the peak, default 0), Adam's `beta_2` (default
            0.999) and `clipnorm` (default none), and
            `decay_ssm_parameters` (default False: no weight decay on SSM
            parameters).
        steps_per_epoch: batches per epoch (sets the schedule's length);
            without it the learning rate is constant.
        epochs: total epochs (default `training["epochs"]`).

    Returns:
        A `keras_ssm.optimizers.SSMAdamW`.
    """
    from keras_ssm.optimizers import SSMAdamW
    from keras_ssm.schedules import warmup_schedule

    lr = training["learning_rate"]
    epochs = epochs or training["epochs"]
    check_warmup(training)
    schedule = lr
    if steps_per_epoch and training.get("schedule", "cosine") != "constant":
        total = max(1, steps_per_epoch * epochs)
        warmup = warmup_steps(training, steps_per_epoch, total)
        # A run shorter than the warm-up (a smoke test of a paper preset)
        # warms up over all but its last step.
        warmup = min(warmup, total - 1)
        schedule = warmup_schedule(
            lr,
            total,
            warmup,
            training.get("schedule", "cosine"),
            alpha=training.get("final_lr_fraction", 0.0),
            initial_learning_rate=training.get("warmup_initial_lr", 0.0),
        )
    return SSMAdamW(
        schedule,
        weight_decay=training["weight_decay"],
        ssm_learning_rate=training.get("ssm_learning_rate"),
        beta_2=training.get("beta_2", 0.999),
        clipnorm=training.get("clipnorm"),
        decay_ssm_parameters=training.get("decay_ssm_parameters", False),
    )


def training_recipe(preset, steps_per_epoch=None, epochs=None):
    """The compiled training recipe of a preset.

    Args:
        preset: a preset name (see `list_presets()`) or a dict of training
            settings (a preset's `training`, possibly modified).
        steps_per_epoch: batches per epoch; sets the length of the
            warm-up/decay schedule (without it the rate is constant).
        epochs: number of epochs (default: the preset's).

    Returns:
        A dict with `optimizer` (a fresh `SSMAdamW`), `batch_size`,
        `epochs` and `settings` (the training settings it was made from).

    Example:

    >>> recipe = training_recipe("s4d_listops_cpu", steps_per_epoch=10)
    >>> recipe["batch_size"], recipe["epochs"]
    (32, 4)
    """
    training = resolve_training(preset)
    epochs = epochs or training["epochs"]
    return {
        "optimizer": make_optimizer(training, steps_per_epoch, epochs),
        "batch_size": training["batch_size"],
        "epochs": epochs,
        "settings": training,
    }


def scale_backbone_config(config, **overrides):
    """A backbone config with `overrides`; inner widths follow `hidden_dim`.

    When `hidden_dim` changes and `intermediate_dim` is not overridden, the
    intermediate width keeps its ratio to `hidden_dim` (as the references
    state it), so a narrower preset stays the same architecture.

    Args:
        config: an `SSMBackbone` config dict.
        **overrides: backbone arguments to replace (None values are
            ignored).

    Returns:
        A new config dict.
    """
    config = dict(config)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    width = overrides.get("hidden_dim")
    if (
        width is not None
        and config.get("intermediate_dim")
        and "intermediate_dim" not in overrides
    ):
        ratio = config["intermediate_dim"] / config["hidden_dim"]
        overrides["intermediate_dim"] = int(round(ratio * width))
    config.update(overrides)
    return config
