"""The public surface of `stale_tokens.testing` is exactly what its `__all__` lists."""

from __future__ import annotations

import types

import stale_tokens.testing


def test_testing_public_names_are_exported() -> None:
    """Every public attribute is in `__all__`, and every name in `__all__` is defined."""
    public = {
        name
        for name, value in vars(stale_tokens.testing).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }

    assert public == set(stale_tokens.testing.__all__)
