"""JSON Patch (RFC 6902) as Kratos applies it to an identity document.

Kratos 1.0 and newer run every patch through ``ory/x`` ``jsonx.ApplyJSONPatch``.
It allows only ``add``, ``remove`` and ``replace``. A ``replace`` becomes an
``add`` unless the last path segment is an array index or ``-``, so it creates
a missing key. An ``add`` creates missing or ``null`` parent objects.
Kratos 0.13 followed RFC 6902 to the letter on both points.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["PatchError", "PatchRules", "apply_patch"]

_ALLOWED_OPERATIONS = frozenset({"add", "remove", "replace"})
_INDEX = re.compile(r"\A(0|[1-9][0-9]*)\Z")
_ATOI = re.compile(r"\A[+-]?[0-9]+\Z")


class PatchError(ValueError):
    """Raised when Kratos would reject a JSON Patch with 400; the text is its message."""


@dataclass(frozen=True, slots=True)
class PatchRules:
    """The JSON Patch behaviour of one Kratos release.

    Attributes:
        lenient: Kratos >= 1.0 behaviour: ``replace`` on a missing key adds it,
            and ``add`` creates missing or ``null`` parents.
        glob_deny: Kratos >= 25.4 matches the deny list case-insensitively
            with glob patterns; older releases compare paths exactly.
    """

    lenient: bool
    glob_deny: bool

    def is_denied(self, path: str) -> bool:
        """Tell whether Kratos rejects a patch that touches *path*."""
        if not self.glob_deny:
            return path in ("/id", "/stateChangedAt", "/credentials")
        # The deny list is lower-cased with the path, so "/stateChangedAt"
        # never matches the real field "/state_changed_at".
        lowered = path.lower()
        return lowered in ("/id", "/statechangedat", "/credentials") or lowered.startswith(
            "/credentials/oidc/"
        )


def apply_patch(document: Any, operations: object, rules: PatchRules) -> Any:
    """Apply *operations* to a copy of *document*, all or nothing.

    Every operation is checked (allowed kind, denied path) before any is
    applied, as Kratos does.

    Returns:
        The patched copy; *document* is left untouched.

    Raises:
        PatchError: With Kratos's message when the patch is malformed, uses an
            unsupported operation or a denied path, or cannot be applied.
    """
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal the body into a JSON Patch: it must be an array")

    checked = [_check(operation, rules) for operation in operations]

    result = copy.deepcopy(document)
    for kind, path, operation in checked:
        result = _apply_one(result, kind, path, operation, rules)
    return result


def _check(operation: object, rules: PatchRules) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(operation, dict):
        raise PatchError("json: cannot unmarshal a JSON Patch operation that is not an object")
    kind = operation.get("op")
    if kind not in _ALLOWED_OPERATIONS:
        raise PatchError(f"unsupported operation: {kind if isinstance(kind, str) else ''}")
    path = operation.get("path")
    if not isinstance(path, str):
        raise PatchError("operation missing path field")
    if rules.is_denied(path):
        raise PatchError(f"patch includes denied path: {path}")
    if kind != "remove" and "value" not in operation:
        raise PatchError(f"error in {kind} for path: '{path}': missing value")
    return kind, path, operation


def _apply_one(
    document: Any, kind: str, path: str, operation: dict[str, Any], rules: PatchRules
) -> Any:
    parts = _split_pointer(path)
    if kind == "replace" and rules.lenient and not (parts and _is_index_segment(parts[-1])):
        kind = "add"

    if not parts:
        if kind == "remove":
            raise PatchError(f"error in remove for path: '{path}': unable to remove the root")
        return copy.deepcopy(operation["value"])

    if kind == "add" and rules.lenient:
        document = _ensure_parents(document, parts)
    parent = _resolve(document, parts[:-1], kind, path)
    key = parts[-1]
    value = copy.deepcopy(operation.get("value"))

    if isinstance(parent, dict):
        _apply_to_object(parent, key, kind, value, path)
    elif isinstance(parent, list):
        _apply_to_array(parent, key, kind, value, path)
    else:
        raise PatchError(f"error in {kind} for path: '{path}': missing value")
    return document


def _apply_to_object(parent: dict[str, Any], key: str, kind: str, value: Any, path: str) -> None:
    if kind == "add":
        parent[key] = value
    elif key not in parent:
        raise PatchError(f"error in {kind} for path: '{path}': missing value")
    elif kind == "remove":
        del parent[key]
    else:
        parent[key] = value


def _apply_to_array(parent: list[Any], key: str, kind: str, value: Any, path: str) -> None:
    if kind == "add" and key == "-":
        parent.append(value)
        return
    if not _INDEX.match(key):
        raise PatchError(f"error in {kind} for path: '{path}': invalid array index {key!r}")
    index = int(key)
    upper = len(parent) if kind == "add" else len(parent) - 1
    if index > upper:
        raise PatchError(f"error in {kind} for path: '{path}': index {index} is out of bounds")
    if kind == "add":
        parent.insert(index, value)
    elif kind == "remove":
        del parent[index]
    else:
        parent[index] = value


def _ensure_parents(document: Any, parts: Sequence[str]) -> Any:
    """Create missing or ``null`` parent objects, as ``EnsurePathExistsOnAdd`` does."""
    if document is None:
        document = {}
    node = document
    for position, part in enumerate(parts[:-1]):
        if isinstance(node, dict):
            child = node.get(part)
            if child is None:
                child = [] if parts[position + 1] == "0" else {}
                node[part] = child
            node = child
        elif isinstance(node, list) and _INDEX.match(part) and int(part) < len(node):
            node = node[int(part)]
        else:
            break
    return document


def _resolve(document: Any, parts: Sequence[str], kind: str, path: str) -> Any:
    node = document
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and _INDEX.match(part) and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"error in {kind} for path: '{path}': missing value")
    return node


def _split_pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'JSON pointer must be empty or start with a "/": {path!r}')
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _is_index_segment(part: str) -> bool:
    # ory/x keeps a true replace when Go's strconv.Atoi accepts the segment.
    return part == "-" or _ATOI.match(part) is not None
