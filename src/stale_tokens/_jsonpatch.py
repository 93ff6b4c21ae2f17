"""JSON Patch operations for Kratos identities, and the ``metadata_admin`` key paths."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

from ._errors import ConfigurationError

__all__ = [
    "KeyPath",
    "add_operations",
    "existing_paths",
    "fallback_add_operations",
    "key_paths",
    "pointer",
    "validate_operations",
]

KeyPath = tuple[str, ...]

# Kratos accepts only these; move, copy and test return 400 "unsupported operation".
_SUPPORTED_OPERATIONS = frozenset({"add", "remove", "replace"})


def pointer(*segments: str) -> str:
    """Build an RFC 6901 JSON Pointer, escaping ``~`` and ``/`` in each segment."""
    return "".join("/" + segment.replace("~", "~0").replace("/", "~1") for segment in segments)


def validate_operations(operations: object) -> list[dict[str, Any]]:
    """Check JSON Patch operations before they are sent and return them as plain dicts.

    Raises:
        ConfigurationError: If an operation is not an object, has no string
            ``path`` starting with ``/``, lacks ``value`` where it needs one, or is
            ``move``, ``copy``, ``test`` or unknown, which Kratos rejects.
    """
    if isinstance(operations, str | bytes) or not isinstance(operations, Sequence):
        raise ConfigurationError(
            f"JSON Patch operations must be a list of objects, got {type(operations).__name__}."
        )

    checked: list[dict[str, Any]] = []
    for index, operation in enumerate(operations):
        if not isinstance(operation, Mapping):
            raise ConfigurationError(
                f"JSON Patch operation {index} must be an object, got {operation!r}."
            )
        name = operation.get("op")
        if name not in _SUPPORTED_OPERATIONS:
            raise ConfigurationError(
                f"JSON Patch operation {index} has op {name!r}; Kratos supports only 'add', "
                "'remove' and 'replace' and returns 400 to 'move', 'copy' and 'test'. "
                "Rewrite it with those three."
            )
        path = operation.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigurationError(
                f"JSON Patch operation {index} needs a 'path' that is a JSON Pointer such as "
                f"'/metadata_admin/key', got {path!r}."
            )
        if name != "remove" and "value" not in operation:
            raise ConfigurationError(
                f"JSON Patch operation {index} ({name} {path}) needs a 'value'."
            )
        checked.append(dict(operation))
    return checked


def key_paths(keys: Iterable[object], *, argument: str) -> list[KeyPath]:
    """Normalise ``metadata_admin`` keys into tuples of path segments.

    Raises:
        ConfigurationError: If *keys* is a single string, or a key is empty, is
            neither a string nor a tuple of strings, or repeats or nests inside
            another key of the same call.
    """
    if isinstance(keys, str | bytes):
        raise ConfigurationError(
            f"{argument} takes a list of keys, got the single string {keys!r}; write [{keys!r}]."
        )

    paths: list[KeyPath] = []
    for key in keys:
        path: object = (key,) if isinstance(key, str) else key
        if not _is_key_path(path):
            raise ConfigurationError(
                f"{argument} key {key!r} must be a non-empty string or a non-empty tuple of "
                "non-empty strings, such as 'last_activity_at' or ('stale_tokens', 'warn')."
            )
        paths.append(path)

    ordered = sorted(paths)
    for shorter, longer in itertools.pairwise(ordered):
        if longer[: len(shorter)] == shorter:
            raise ConfigurationError(
                f"{argument} keys {shorter!r} and {longer!r} overlap; write the nested value "
                "once, either as a whole object or key by key."
            )
    return paths


def _is_key_path(path: object) -> TypeGuard[KeyPath]:
    return (
        isinstance(path, tuple)
        and len(path) > 0
        and all(isinstance(segment, str) and segment for segment in path)
    )


def add_operations(values: Mapping[KeyPath, Any]) -> list[dict[str, Any]]:
    """Build one ``add`` per key under ``/metadata_admin``.

    Kratos >= 1.0 creates missing or ``null`` parents on ``add``, so this
    patch alone works there and touches no other key.
    """
    return [
        {"op": "add", "path": pointer("metadata_admin", *path), "value": value}
        for path, value in values.items()
    ]


def fallback_add_operations(
    metadata_admin: Any, values: Mapping[KeyPath, Any]
) -> list[dict[str, Any]] | None:
    """Build ``add`` operations that also create each missing parent object.

    Kratos < 1.0 returns 400 to an ``add`` whose parent is missing or ``null``.
    This patch adds, for each key, the first missing parent as a whole object
    built from the values below it, and leaves every existing key alone.

    Returns:
        The operations, or ``None`` when no parent is missing (the 400 had
        another cause) or a parent is a value other than an object or ``null``,
        which no ``add`` can extend without overwriting it.
    """
    tree = _value_tree(values)
    if metadata_admin is None:
        return [{"op": "add", "path": "/metadata_admin", "value": _materialise(tree)}]
    if not isinstance(metadata_admin, Mapping):
        return None

    operations: list[dict[str, Any]] = []
    try:
        is_parent_missing = _collect_operations(
            metadata_admin, tree, ("metadata_admin",), operations
        )
    except _ParentNotAnObjectError:
        return None
    return operations if is_parent_missing else None


class _ParentNotAnObjectError(Exception):
    """A parent on a key's path is a scalar or a list."""


class _Leaf:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _value_tree(values: Mapping[KeyPath, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in values.items():
        node = tree
        for segment in path[:-1]:
            node = node.setdefault(segment, {})
        node[path[-1]] = _Leaf(value)
    return tree


def _materialise(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: node.value if isinstance(node, _Leaf) else _materialise(node)
        for key, node in tree.items()
    }


def _collect_operations(
    existing: Mapping[str, Any],
    tree: Mapping[str, Any],
    prefix: KeyPath,
    operations: list[dict[str, Any]],
) -> bool:
    """Append the operations for *tree* under *existing*; return whether a parent was missing."""
    is_parent_missing = False
    for key, node in tree.items():
        path = (*prefix, key)
        if isinstance(node, _Leaf):
            operations.append({"op": "add", "path": pointer(*path), "value": node.value})
            continue
        current = existing.get(key)
        if isinstance(current, Mapping):
            is_parent_missing |= _collect_operations(current, node, path, operations)
        elif current is None:
            operations.append({"op": "add", "path": pointer(*path), "value": _materialise(node)})
            is_parent_missing = True
        else:
            raise _ParentNotAnObjectError
    return is_parent_missing


def existing_paths(metadata_admin: Any, paths: Iterable[KeyPath]) -> list[KeyPath]:
    """Return the *paths* present in *metadata_admin*, in the order given."""
    present: list[KeyPath] = []
    for path in paths:
        node = metadata_admin
        for segment in path:
            if not isinstance(node, Mapping) or segment not in node:
                break
            node = node[segment]
        else:
            present.append(path)
    return present
