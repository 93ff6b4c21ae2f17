"""Load a notifier or an audit sink named on the command line as ``module:attribute``."""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

from ._common import CommandError

__all__ = ["DEFAULT_APP_DIR", "add_app_dir_option", "load_plugin"]


DEFAULT_APP_DIR = "."


def add_app_dir_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--app-dir``, the directory searched first for plug-in modules."""
    parser.add_argument(
        "--app-dir",
        metavar="DIR",
        default=DEFAULT_APP_DIR,
        help="directory searched first for the modules of --notifier and --audit-sink, "
        "as uvicorn's --app-dir (default: the current directory)",
    )


def load_plugin(spec: str, *, option: str, method: str, app_dir: str = DEFAULT_APP_DIR) -> Any:
    """Import *spec* and return the object it names, calling it first if it is a class or factory.

    Args:
        spec: ``package.module:attribute``, such as ``myapp.mail:notifier``.
        option: The command-line option, for messages.
        method: The async method the object must have, such as ``"notify"``.
        app_dir: Directory put first on ``sys.path`` before the import. A
            console script does not search the current directory, unlike
            ``python -m``.

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
    directory = str(Path(app_dir).resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(
            f"{option} {spec!r}: cannot import {module_name!r} ({exc}); check the module "
            f"name, and that it is installed in this environment or sits in --app-dir "
            f"({directory})"
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
