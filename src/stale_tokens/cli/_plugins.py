"""Load a notifier or an audit sink named on the command line as ``module:attribute``."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ._common import CommandError

__all__ = ["load_plugin"]


def load_plugin(spec: str, *, option: str, method: str) -> Any:
    """Import *spec* and return the object it names, calling it first if it is a class or factory.

    Args:
        spec: ``package.module:attribute``, such as ``myapp.mail:notifier``.
        option: The command-line option, for messages.
        method: The async method the object must have, such as ``"notify"``.

    Raises:
        CommandError: If the module or attribute is missing, or the object
            has no *method*.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CommandError(
            f"{option} {spec!r} is not of the form package.module:attribute, "
            "such as myapp.mail:notifier"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(
            f"{option} {spec!r}: cannot import {module_name!r} ({exc}); check the module "
            "name and that it is installed in this environment"
        ) from exc
    try:
        value = getattr(module, attribute)
    except AttributeError:
        raise CommandError(
            f"{option} {spec!r}: module {module_name!r} has no attribute {attribute!r}"
        ) from None

    if inspect.isclass(value) or (callable(value) and not hasattr(value, method)):
        try:
            value = value()
        except Exception as exc:
            raise CommandError(
                f"{option} {spec!r}: calling {attribute} without arguments failed "
                f"({type(exc).__name__}: {exc}); name an object, or a factory that takes none"
            ) from exc
    if not callable(getattr(value, method, None)):
        raise CommandError(
            f"{option} {spec!r} names {type(value).__name__}, which has no {method}() method; "
            f"point it at an object with an async {method}(), or at a factory returning one"
        )
    return value
