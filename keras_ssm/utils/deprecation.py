"""Deprecated argument names: one mapping, one warning, one error.

keras-ssm names the model width `hidden_dim` and the input width
`input_features` everywhere (see the "Vocabulary" section of the README).
Arguments renamed on the way keep working under their old names: a
constructor keyword, the key of a config saved by an earlier version, or a
`from_preset` override. Each use warns once with both names; giving the old
and the new name together is an error naming both.

Example:

>>> class Head:
...     @deprecated_arguments(width="hidden_dim")
...     def __init__(self, hidden_dim=8):
...         self.hidden_dim = hidden_dim
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     head = Head(width=4)
>>> head.hidden_dim, str(caught[0].message)
(4, '`width` of Head is deprecated: use `hidden_dim`.')
"""

import functools
import inspect
import warnings


def rename_arguments(arguments, renames, owner, stacklevel=2):
    """`arguments` with each deprecated name replaced by the current one.

    Args:
        arguments: dict of keyword arguments (left unchanged).
        renames: `{deprecated name: current name}`.
        owner: what takes the arguments, for the messages (e.g.
            `"SSMClassifier"`).
        stacklevel: `warnings.warn`'s, counted from the caller of this
            function.

    Returns:
        A new dict, the values under their current names.

    Raises:
        ValueError: when an argument is given under both names (an
            explicit None under the current name counts as not given).
    """
    arguments = dict(arguments)
    for old, new in renames.items():
        if old not in arguments:
            continue
        if arguments.get(new, None) is None:
            arguments.pop(new, None)  # an explicit None gives no value
        if new in arguments:
            raise ValueError(
                f"{owner} got both `{new}` and its deprecated name `{old}`; "
                f"give only `{new}`."
            )
        warnings.warn(
            f"`{old}` of {owner} is deprecated: use `{new}`.",
            DeprecationWarning,
            stacklevel=stacklevel + 1,
        )
        arguments[new] = arguments.pop(old)
    return arguments


def deprecated_arguments(**renames):
    """Decorates an `__init__` to accept deprecated keyword names.

    Each keyword `old=new` lets callers (and configs saved earlier, which
    reach `__init__` through `from_config`) write `old` for the argument
    `new`, with a `DeprecationWarning`. The mapping is kept as the
    `deprecated_arguments` attribute of the decorated function, where
    `from_preset` finds it for its overrides.

    Args:
        **renames: `old="new"` pairs.

    Returns:
        The decorator.
    """

    def decorate(init):
        signature = inspect.signature(init)
        parameters = list(signature.parameters)[1:]

        @functools.wraps(init)
        def wrapper(self, *args, **kwargs):
            if any(old in kwargs for old in renames):
                # Positional arguments count as given under their names.
                given = dict(zip(parameters, args))
                given.update(kwargs)
                given = rename_arguments(
                    given, renames, type(self).__name__, stacklevel=2
                )
                kwargs = {
                    k: v
                    for k, v in given.items()
                    if k not in parameters[: len(args)]
                }
            return init(self, *args, **kwargs)

        # `inspect.getfullargspec` (Keras reads it) does not follow
        # `__wrapped__`: the explicit signature keeps it the constructor's.
        wrapper.__signature__ = signature
        wrapper.deprecated_arguments = dict(renames)
        return wrapper

    return decorate


def renamed_arguments(cls):
    """The `{deprecated name: current name}` map of `cls.__init__`."""
    return dict(getattr(cls.__init__, "deprecated_arguments", {}))
