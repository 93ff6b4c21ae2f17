"""The public surface is exactly what `stale_tokens.__all__` lists."""

from __future__ import annotations

import stale_tokens


def test_all_is_sorted() -> None:
    """`__all__` is kept sorted so additions show up clearly in diffs."""
    assert stale_tokens.__all__ == sorted(stale_tokens.__all__)


def test_all_names_resolve() -> None:
    """Every exported name is importable from the package root."""
    for name in stale_tokens.__all__:
        assert getattr(stale_tokens, name) is not None, name


def test_public_names_are_exported() -> None:
    """No public attribute of the package root is missing from `__all__`."""
    public = {
        name
        for name in vars(stale_tokens)
        if not name.startswith("_")
        and not isinstance(getattr(stale_tokens, name), type(stale_tokens))
    }
    assert public == set(stale_tokens.__all__)


def test_errors_share_one_root() -> None:
    """Every exported exception derives from `StaleTokensError`."""
    for name in stale_tokens.__all__:
        value = getattr(stale_tokens, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, stale_tokens.StaleTokensError), name
