"""Kratos admin routes: identities under ``/admin/identities``."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._faults import pause_of
from ._gotime import parse_keeping_offset
from ._kratos_state import (
    IDENTITY_STATES,
    NIL_UUID,
    CredentialsView,
    EmulatedKratos,
    IdentityRecord,
    canonical_uuid,
)
from ._pages import (
    INVALID_PAGE_TOKEN,
    encode_offset_token,
    encode_query,
    link,
    offset_links,
    read_offset_page,
)
from ._patch import PatchError, apply_patch
from ._responses import empty, json_response, kratos_error
from ._versions import KratosVersion

__all__ = ["KratosAdminRoutes"]

DEFAULT_PAGE_SIZE = 250
LEGACY_MAX_PER_PAGE = 500
LEGACY_ITEM_LIMIT = 1000
# Kratos < 1.1 paginates by offset and allows up to 1000 per page.
MIGRATION_MAX_SIZE = 1000
MAX_IDS_FILTER = 500
CREDENTIAL_TYPES = frozenset(
    {
        "password",
        "oidc",
        "totp",
        "lookup_secret",
        "webauthn",
        "code",
        "passkey",
        "profile",
        "saml",
        "link_recovery",
        "code_recovery",
    }
)
_FILTERS = (
    "ids",
    "organization_id",
    "credentials_identifier",
    "preview_credentials_identifier_similar",
)
_PATCH_REASON = "An error occured when applying the JSON patch"  # sic, as Kratos spells it
_LIST_PATH = "/admin/identities"


class _BadRequestError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KratosAdminRoutes:
    """The identity endpoints of the Kratos admin API."""

    def __init__(
        self, kratos: EmulatedKratos, *, version: KratosVersion, writes: Counter[str]
    ) -> None:
        self._kratos = kratos
        self._version = version
        self._writes = writes

    def routes(self) -> list[Route]:
        return [
            Route(_LIST_PATH, self.list_identities, methods=["GET"], name="list_identities"),
            Route(_LIST_PATH, self.create_identity, methods=["POST"], name="create_identity"),
            Route(f"{_LIST_PATH}/{{id}}", self.get_identity, methods=["GET"], name="get_identity"),
            Route(
                f"{_LIST_PATH}/{{id}}",
                self.patch_identity,
                methods=["PATCH"],
                name="patch_identity",
            ),
            Route(f"{_LIST_PATH}/{{id}}", self.put_identity, methods=["PUT"], name="put_identity"),
            Route(
                f"{_LIST_PATH}/{{id}}",
                self.delete_identity,
                methods=["DELETE"],
                name="delete_identity",
            ),
        ]

    async def list_identities(self, request: Request) -> Response:
        """``GET /admin/identities``: keyset pages, or offset pages when ``page`` is given."""
        try:
            matches = self._filter(request)
            expansion = _expansion(request, listing=True)
            if not self._version.has_keyset_pagination:
                return self._migration_page(request, matches, expansion)
            if _is_legacy_page_mode(request):
                return self._legacy_page(request, matches, expansion)
            return self._keyset_page(request, matches, expansion)
        except _BadRequestError as exc:
            return kratos_error(request, 400, reason=exc.reason)

    async def get_identity(self, request: Request) -> Response:
        """``GET /admin/identities/{id}``: credentials without config unless requested."""
        record = self._kratos.get(request.path_params["id"])
        if record is None:
            return kratos_error(request, 404)
        try:
            expansion = _expansion(request, listing=False)
        except _BadRequestError as exc:
            return kratos_error(request, 400, reason=exc.reason)
        return json_response(self._render(record, expansion))

    async def create_identity(self, request: Request) -> Response:
        """``POST /admin/identities``: 201 with the new identity."""
        body = await _json_body(request)
        if not isinstance(body, dict):
            return kratos_error(request, 400, reason="The request body must be a JSON object.")

        schema_id = body.get("schema_id") or "default"
        state = body.get("state") or "active"
        if state not in IDENTITY_STATES:
            return kratos_error(request, 400, reason=_invalid_state_reason(state))
        traits = body.get("traits")
        reason = self._kratos.check_traits(str(schema_id), traits)
        if reason is not None:
            return kratos_error(request, 400, reason=reason)
        external_id = body.get("external_id") or None
        if external_id and self._kratos.external_id_owner(str(external_id)) is not None:
            return _conflict(request)

        rendered = self._kratos.add_identity(
            traits=traits,
            schema_id=str(schema_id),
            state=str(state),
            metadata_admin=body.get("metadata_admin"),
            metadata_public=body.get("metadata_public"),
            external_id=external_id,
            credentials=_imported_credentials(body.get("credentials")),
        )
        self._writes[rendered["id"]] += 1
        if body.get("metadata_admin") is None:
            # Kratos omits the key from a 201 when the request did not set it.
            rendered.pop("metadata_admin", None)
        return json_response(rendered, status=201)

    async def patch_identity(self, request: Request) -> Response:
        """``PATCH /admin/identities/{id}``: JSON Patch, all or nothing, last writer wins."""
        read = await self._read_for_write(request)
        if read is None:
            return kratos_error(request, 404)
        snapshot, operations = read

        document = self._kratos.render_identity(snapshot, credentials="with_config")
        try:
            patched = apply_patch(document, operations, self._version.patch_rules)
        except PatchError as exc:
            return kratos_error(request, 400, reason=_PATCH_REASON, message=str(exc))
        try:
            updated = _record_from_document(snapshot, patched)
        except _BadRequestError as exc:
            return kratos_error(request, 400, reason=exc.reason)
        if not self._version.can_patch_credentials:
            updated.credentials = copy.deepcopy(snapshot.credentials)
        return self._write(request, snapshot, updated)

    async def put_identity(self, request: Request) -> Response:
        """``PUT /admin/identities/{id}``: omitted metadata and external_id become null."""
        read = await self._read_for_write(request)
        if read is None:
            return kratos_error(request, 404)
        snapshot, body = read
        if not isinstance(body, dict):
            return kratos_error(request, 400, reason="The request body must be a JSON object.")

        credentials = copy.deepcopy(snapshot.credentials)
        credentials.update(_imported_credentials(body.get("credentials")))
        updated = replace(
            snapshot,
            schema_id=str(body.get("schema_id") or snapshot.schema_id),
            state=str(body.get("state") or snapshot.state),
            traits=copy.deepcopy(body.get("traits")),
            metadata_public=copy.deepcopy(body.get("metadata_public")),
            metadata_admin=copy.deepcopy(body.get("metadata_admin")),
            external_id=body.get("external_id") or None,
            credentials=credentials,
        )
        return self._write(request, snapshot, updated)

    async def delete_identity(self, request: Request) -> Response:
        """``DELETE /admin/identities/{id}``: 204, or 404 for unknown and malformed ids."""
        identity_id = canonical_uuid(request.path_params["id"])
        if identity_id is None or not self._kratos.delete(identity_id):
            return kratos_error(request, 404)
        self._writes[identity_id] += 1
        return empty()

    async def _read_for_write(self, request: Request) -> tuple[IdentityRecord, Any] | None:
        """Read the row and the JSON body, then spend any injected latency.

        Kratos reads the row outside any transaction and later writes every
        column back, so a write that lands during the latency is overwritten.
        A malformed id is a 404 because Kratos parses it with uuid.FromStringOrNil.
        """
        record = self._kratos.get(request.path_params["id"])
        if record is None:
            return None
        snapshot = copy.deepcopy(record)
        body = await _json_body(request)
        await pause_of(request.scope.setdefault("state", {}))()
        return snapshot, body

    def _write(
        self, request: Request, snapshot: IdentityRecord, updated: IdentityRecord
    ) -> Response:
        now = self._kratos.now
        state_changed = updated.state != snapshot.state
        if state_changed:
            if updated.state not in IDENTITY_STATES:
                return kratos_error(request, 400, reason=_invalid_state_reason(updated.state))
            updated.state_changed_at = now

        reason = self._kratos.check_traits(updated.schema_id, updated.traits)
        if reason is not None:
            return kratos_error(request, 400, reason=reason)
        if updated.external_id:
            owner = self._kratos.external_id_owner(updated.external_id)
            if owner not in (None, updated.id):
                return _conflict(request)
        if self._kratos.get(updated.id) is None:
            # The row vanished between the read and the write: UPDATE hit no row.
            return kratos_error(request, 404)

        updated.updated_at = now
        self._kratos.store(updated)
        self._writes[updated.id] += 1
        rendered = self._kratos.render_identity(
            updated,
            credentials="without_config",
            state_changed_nanoseconds=_nanoseconds_of(now.microsecond) if state_changed else 0,
        )
        return json_response(rendered)

    def _filter(self, request: Request) -> Callable[[IdentityRecord], bool] | list[str] | None:
        """Return the ``ids`` filter as sorted ids, another filter as a predicate, or ``None``."""
        query = request.query_params
        present = [name for name in _FILTERS if any(query.getlist(name))]
        if len(present) > 1:
            raise _BadRequestError("You cannot combine multiple filters in this API")
        if not present:
            return None
        name = present[0]
        if name == "ids":
            return _ids_filter(query.getlist("ids"))
        value = query.getlist(name)[0]
        if name == "organization_id":
            organization_id = canonical_uuid(value)
            if organization_id is None:
                raise _BadRequestError(f"Invalid organization ID: {value}")
            return lambda record: record.organization_id == organization_id
        if name == "credentials_identifier":
            return lambda record: any(
                identifier == _normalize_identifier(kind, value)
                for kind, identifier in _identifiers(record)
            )
        prefix = value.lower()
        return lambda record: any(
            identifier.lower().startswith(prefix) for _, identifier in _identifiers(record)
        )

    def _keyset_page(
        self,
        request: Request,
        matches: Callable[[IdentityRecord], bool] | list[str] | None,
        expansion: _Expansion,
    ) -> Response:
        query = request.query_params
        size_text = query.get("page_size") or query.get("per_page")
        size = _parse_int(size_text, "page_size") if size_text else DEFAULT_PAGE_SIZE
        if size <= 0:
            size = DEFAULT_PAGE_SIZE
        limit = self._version.max_page_size
        if limit is not None:
            size = min(size, limit)
        token = query.get("page_token") or NIL_UUID
        if canonical_uuid(token) is None:
            raise _BadRequestError(INVALID_PAGE_TOKEN)
        token = str(canonical_uuid(token))

        # One row more than the page shows whether a next page exists.
        ids = self._collect_after(token, size + 1, matches)
        page, has_next = ids[:size], len(ids) > size
        items = request.query_params.multi_items()
        links = [_keyset_link(items, size, NIL_UUID, "first")]
        if has_next:
            links.append(_keyset_link(items, size, page[-1], "next"))
        body = [self._render_listed(identity_id, expansion) for identity_id in page]
        return json_response(body, headers={"Link": ",".join(links)})

    def _legacy_page(
        self,
        request: Request,
        matches: Callable[[IdentityRecord], bool] | list[str] | None,
        expansion: _Expansion,
    ) -> Response:
        query = request.query_params
        page = _parse_int(query.get("page"), "page")
        per_page_text = query.get("per_page")
        per_page = _parse_int(per_page_text, "per_page") if per_page_text else DEFAULT_PAGE_SIZE
        if per_page <= 0:
            per_page = DEFAULT_PAGE_SIZE
        per_page = min(per_page, LEGACY_MAX_PER_PAGE)
        if page < 0:
            raise _BadRequestError(f"The page number {page} is invalid; pages start at 0")
        if page * per_page > LEGACY_ITEM_LIMIT:
            raise _BadRequestError(
                f"Legacy pagination is limited to {LEGACY_ITEM_LIMIT} items; "
                "use page_token and page_size instead"
            )

        ids = self._collect_after(NIL_UUID, None, matches)
        total = len(ids)
        body = [
            self._render_listed(i, expansion) for i in ids[page * per_page : (page + 1) * per_page]
        ]
        links = offset_links(
            _LIST_PATH,
            request.query_params.multi_items(),
            total=total,
            page=page,
            per_page=per_page,
        )
        headers = {"X-Total-Count": str(total), "Link": links}
        return json_response(body, headers=headers)

    def _migration_page(
        self,
        request: Request,
        matches: Callable[[IdentityRecord], bool] | list[str] | None,
        expansion: _Expansion,
    ) -> Response:
        """Kratos < 1.1: offset pages, absolute links carrying all four parameters."""
        try:
            offset, size = read_offset_page(
                request.query_params, default_size=DEFAULT_PAGE_SIZE, max_size=MIGRATION_MAX_SIZE
            )
        except ValueError as exc:
            raise _BadRequestError(str(exc)) from None

        ids = self._collect_after(NIL_UUID, None, matches)
        body = [self._render_listed(i, expansion) for i in ids[offset : offset + size]]
        base = f"{self._kratos.public_url.rstrip('/')}/identities"
        last_offset = max(len(ids) - 1, 0) // size * size
        targets = [(0, "first")]
        if offset + size < len(ids):
            targets.append((offset + size, "next"))
        if offset > 0:
            targets.append((max(offset - size, 0), "prev"))
        targets.append((last_offset, "last"))
        links = [_migration_link(base, target, size, rel) for target, rel in targets]
        headers = {"X-Total-Count": str(len(ids)), "Link": ",".join(links)}
        return json_response(body, headers=headers)

    def _collect_after(
        self,
        token: str,
        limit: int | None,
        matches: Callable[[IdentityRecord], bool] | list[str] | None,
    ) -> list[str]:
        if matches is None and limit is not None:
            return self._kratos.ids_after(token, limit)
        candidates: Iterable[str]
        if isinstance(matches, list):
            candidates = (i for i in matches if i > token and self._kratos.get(i) is not None)
        else:
            candidates = self._kratos.iter_ids_after(token)
        collected: list[str] = []
        for identity_id in candidates:
            if callable(matches) and not matches(_must(self._kratos.get(identity_id))):
                continue
            collected.append(identity_id)
            if limit is not None and len(collected) == limit:
                break
        return collected

    def _render_listed(self, identity_id: str, expansion: _Expansion) -> dict[str, Any]:
        return self._render(_must(self._kratos.get(identity_id)), expansion)

    def _render(self, record: IdentityRecord, expansion: _Expansion) -> dict[str, Any]:
        if not expansion.show:
            return self._kratos.render_identity(record)
        view: CredentialsView = "with_config" if expansion.config_types else "without_config"
        body = self._kratos.render_identity(record, credentials=view)
        for kind, credential in body.get("credentials", {}).items():
            if kind not in expansion.config_types:
                credential.pop("config", None)
        return body


@dataclass(frozen=True, slots=True)
class _Expansion:
    """The credentials a response shows: none, or all of them with config for some types."""

    show: bool
    config_types: frozenset[str]


def _expansion(request: Request, *, listing: bool) -> _Expansion:
    """Read ``include_credential``; a listing shows credentials only when asked or searched.

    Raises:
        _BadRequestError: If a requested credential type does not exist.
    """
    requested = frozenset(request.query_params.getlist("include_credential"))
    unknown = sorted(requested - CREDENTIAL_TYPES)
    if unknown:
        raise _BadRequestError(f"Invalid credentials type: {', '.join(unknown)}")
    searched = bool(request.query_params.get("credentials_identifier"))
    return _Expansion(show=not listing or bool(requested) or searched, config_types=requested)


def _is_legacy_page_mode(request: Request) -> bool:
    query = request.query_params
    return "page" in query and "page_token" not in query and "page_size" not in query


def _ids_filter(values: list[str]) -> list[str]:
    if len(values) > MAX_IDS_FILTER:
        raise _BadRequestError(
            f"The number of ids to filter must not exceed {MAX_IDS_FILTER}, got {len(values)}"
        )
    ids: set[str] = set()
    for value in values:
        identity_id = canonical_uuid(value)
        if identity_id is None:
            raise _BadRequestError(f"Invalid UUID value `{value}` for filter `ids`")
        ids.add(identity_id)
    return sorted(ids)


def _keyset_link(query: list[tuple[str, str]], size: int, token: str, rel: str) -> str:
    overrides = {"page_size": str(size), "page_token": token}
    return link(f"{_LIST_PATH}?{encode_query(query, overrides)}", rel)


def _migration_link(base: str, offset: int, size: int, rel: str) -> str:
    parameters = {
        "page": str(offset // size),
        "page_size": str(size),
        "page_token": encode_offset_token(offset),
        "per_page": str(size),
    }
    return link(f"{base}?{encode_query([], parameters)}", rel)


def _record_from_document(snapshot: IdentityRecord, document: Any) -> IdentityRecord:
    """Read the patched JSON back into a row, rejecting what Go's decoder would reject."""
    if not isinstance(document, dict):
        raise _BadRequestError("json: cannot unmarshal the patched document into an identity")
    state = document.get("state")
    schema_id = document.get("schema_id")
    if not isinstance(state, str):
        raise _BadRequestError(f"json: cannot unmarshal {json.dumps(state)} into field state")
    if not isinstance(schema_id, str):
        raise _BadRequestError(
            f"json: cannot unmarshal {json.dumps(schema_id)} into field schema_id"
        )
    external_id = document.get("external_id")
    if external_id is not None and not isinstance(external_id, str):
        raise _BadRequestError("json: cannot unmarshal a non-string into field external_id")
    credentials = document.get("credentials") or {}
    if not isinstance(credentials, dict):
        raise _BadRequestError("json: cannot unmarshal a non-object into field credentials")
    return replace(
        snapshot,
        schema_id=schema_id,
        state=state,
        traits=document.get("traits"),
        metadata_public=document.get("metadata_public"),
        metadata_admin=document.get("metadata_admin"),
        state_changed_at=_state_changed_at(document.get("state_changed_at")),
        external_id=external_id or None,
        credentials=credentials,
        verifiable_addresses=list(document.get("verifiable_addresses") or []),
        recovery_addresses=list(document.get("recovery_addresses") or []),
    )


def _state_changed_at(value: object) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _BadRequestError("json: cannot unmarshal a non-string into field state_changed_at")
    try:
        return parse_keeping_offset(value)
    except ValueError:
        raise _BadRequestError(f"parsing time {json.dumps(value)} as RFC 3339 failed") from None


def _imported_credentials(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    return {
        kind: {"type": kind, "identifiers": [], "version": 0}
        for kind in value
        if kind in CREDENTIAL_TYPES
    }


def _identifiers(record: IdentityRecord) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for kind, credential in record.credentials.items():
        identifiers = credential.get("identifiers") if isinstance(credential, dict) else None
        found.extend((kind, i) for i in identifiers or [] if isinstance(i, str))
    return found


def _normalize_identifier(kind: str, value: str) -> str:
    # OIDC and SAML subjects are compared verbatim; the others like emails.
    return value if kind in ("oidc", "saml") else value.strip().lower()


def _invalid_state_reason(state: object) -> str:
    return f"The supplied state ('{state}') was not valid. Valid states are ('active', 'inactive')."


def _conflict(request: Request) -> Response:
    return kratos_error(
        request, 409, reason="This identity conflicts with another identity that already exists."
    )


def _parse_int(text: str | None, name: str) -> int:
    try:
        return int(text or "")
    except ValueError:
        raise _BadRequestError(
            f"The {name} query parameter must be an integer, got {text!r}"
        ) from None


def _nanoseconds_of(microsecond: int) -> int:
    # Go keeps nanoseconds for values that skip the database; any stable
    # non-zero digits show clients a 9-digit fraction.
    return (microsecond * 7 + 1) % 1000 or 1


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def _must(record: IdentityRecord | None) -> IdentityRecord:
    if record is None:
        raise LookupError("identity vanished while listing")
    return record
