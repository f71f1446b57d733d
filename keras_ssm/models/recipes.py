"""Presets to models and training recipes.

`training_recipe(preset)` turns a preset's `training` settings into an
optimizer (`keras_ssm.optimizers.SSMAdamW`: SSM parameters in their own
group, without weight decay unless the reference decays them) with the
preset's warm-up schedule, plus the batch size and number of epochs.
"""

from keras_ssm import presets as registry


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


def make_optimizer(training, steps_per_epoch=None, epochs=None):
    """`SSMAdamW` with the schedule of `training` settings.

    Args:
        training: dict with `learning_rate`, `weight_decay`, optional
            `ssm_learning_rate`, `epochs`, `schedule` (`"cosine"`, the
            default, `"linear"` or `"constant"`; see
            `keras_ssm.schedules.warmup_schedule`), `warmup_steps` or
            `warmup_epochs` (default 0), `final_lr_fraction` (cosine's
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
    schedule = lr
    if steps_per_epoch and training.get("schedule", "cosine") != "constant":
        total = max(1, steps_per_epoch * epochs)
        warmup = training.get("warmup_steps") or round(
            training.get("warmup_epochs", 0) * steps_per_epoch
        )
        # A run shorter than the warm-up (a smoke test of a paper preset)
        # warms up over all but its last step.
        warmup = min(warmup, total - 1)
        schedule = warmup_schedule(
            lr,
            total,
            warmup,
            training.get("schedule", "cosine"),
            alpha=training.get("final_lr_fraction", 0.0),
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
    (32, 5)
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
