"""Every emulator response on the endpoints the library uses validates against Ory's OpenAPI specs.

The specs are Kratos and Hydra v26.2.0's ``spec/api.json``, kept in tests/data.
One validator per spec is built once for the module and reused. The specs
themselves are not validated (``spec_validator_cls=None``): that is Ory's
concern and takes seconds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.response.exceptions import InvalidData
from werkzeug.datastructures import Headers, ImmutableMultiDict

from stale_tokens.testing import SESSION_COOKIE, Fault, OryEmulator

DATA = Path(__file__).parent / "data"
UNKNOWN_ID = "11111111-1111-4111-8111-111111111111"
_TRUST_THE_SPEC = Config(spec_validator_cls=None)


def _without_closed_details(spec: dict[str, Any]) -> dict[str, Any]:
    """Open ``genericError.details``, which the spec closes but Kratos fills with any keys.

    herodot's ``details`` is a ``map[string]interface{}``; the spec's
    ``additionalProperties: false`` would reject every real error with details.
    """
    details = spec["components"]["schemas"]["genericError"]["properties"]["details"]
    details.pop("additionalProperties", None)
    return spec


@cache
def kratos_spec() -> OpenAPI:
    spec = json.loads((DATA / "kratos-api-v26.2.0.json").read_text())
    return OpenAPI.from_dict(_without_closed_details(spec), config=_TRUST_THE_SPEC)


@cache
def hydra_spec() -> OpenAPI:
    spec = json.loads((DATA / "hydra-api-v26.2.0.json").read_text())
    return OpenAPI.from_dict(spec, config=_TRUST_THE_SPEC)


class SpecRequest:
    """An httpx request in the shape openapi-core reads."""

    def __init__(self, request: httpx.Request) -> None:
        self.host_url = f"{request.url.scheme}://{request.url.netloc.decode()}"
        self.path = request.url.path
        self.method = request.method.lower()
        self.body: bytes | None = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )


class SpecResponse:
    """An httpx response in the shape openapi-core reads."""

    def __init__(self, response: httpx.Response) -> None:
        self.data = response.content
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(dict(response.headers))


def assert_matches_spec(response: httpx.Response) -> None:
    spec = hydra_spec() if response.request.url.path.startswith("/admin/oauth2") else kratos_spec()
    spec.validate_response(SpecRequest(response.request), SpecResponse(response))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def emulator() -> OryEmulator:
    return OryEmulator(seed=13)


@pytest.fixture
async def client(emulator: OryEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ory") as client:
        yield client


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, {"id": 5}), (200, [{"id": "x"}]), (404, {"error": {"code": 404}})],
)
def test_spec_check_rejects_wrong_shapes(status: int, body: object) -> None:
    """The validator rejects an identity or an error body of the wrong shape."""
    request = httpx.Request("GET", f"http://ory/admin/identities/{UNKNOWN_ID}")
    response = httpx.Response(status, json=body, request=request)

    with pytest.raises(InvalidData):
        assert_matches_spec(response)


@pytest.mark.anyio
async def test_identity_responses_match_spec(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """List, get, patch, put, create and delete responses, success and error, fit the spec."""
    identity_id = emulator.kratos.add_identity(
        traits={"email": "a@example.com"},
        metadata_public={"plan": "pro"},
        credentials={"password": {"identifiers": ["a@example.com"], "config": {}}},
    )["id"]
    emulator.kratos.add_identity(created_at="2021-08-17T12:18:01.690741+02:00")
    path = f"/admin/identities/{identity_id}"
    patch_ok = [{"op": "add", "path": "/metadata_admin/last_seen", "value": "now"}]

    responses = [
        await client.get("/admin/identities", params={"page_size": 1}),
        await client.get("/admin/identities", params={"page": 0, "per_page": 1}),
        await client.get("/admin/identities", params={"page_token": "bad"}),
        await client.get("/admin/identities", params={"ids": [identity_id]}),
        await client.get(path),
        await client.get(path, params={"include_credential": "password"}),
        await client.get(f"/admin/identities/{UNKNOWN_ID}"),
        await client.patch(path, json=patch_ok),
        await client.patch(path, json=[{"op": "replace", "path": "/state", "value": "inactive"}]),
        await client.patch(path, json=[{"op": "test", "path": "/state", "value": "x"}]),
        await client.patch(path, json=[{"op": "add", "path": "/credentials", "value": {}}]),
        await client.patch(f"/admin/identities/{UNKNOWN_ID}", json=patch_ok),
        await client.put(path, json={"schema_id": "default", "traits": {"email": "b@example.com"}}),
        await client.put(path, json={"schema_id": "default"}),
        await client.post("/admin/identities", json={"schema_id": "default", "traits": {}}),
        await client.delete(path),
        await client.delete(path),
    ]

    for response in responses:
        assert_matches_spec(response)
    assert [r.status_code for r in responses] == [
        200, 200, 400, 200, 200, 200, 404, 200, 200, 400, 400, 404, 200, 400, 201, 204, 404,
    ]  # fmt: skip


@pytest.mark.anyio
async def test_session_responses_match_spec(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """Session listing, deletion and whoami responses, success and error, fit the spec."""
    identity_id = emulator.kratos.add_identity(metadata_public={"plan": "pro"})["id"]
    session = emulator.kratos.create_session(identity_id, methods=("password", "totp"))
    sessions = f"/admin/identities/{identity_id}/sessions"

    responses = [
        await client.get(sessions),
        await client.get(sessions, params={"active": "true"}),
        await client.get("/admin/identities/nope/sessions"),
        await client.get("/sessions/whoami", headers={"X-Session-Token": session.token}),
        await client.get(
            "/sessions/whoami", headers={"Cookie": f"{SESSION_COOKIE}={session.cookie}"}
        ),
        await client.delete(sessions),
        await client.delete(sessions),
        await client.delete("/admin/identities/nope/sessions"),
        await client.get("/sessions/whoami", headers={"X-Session-Token": session.token}),
    ]

    for response in responses:
        assert_matches_spec(response)
    assert [r.status_code for r in responses] == [200, 200, 400, 200, 200, 204, 404, 400, 401]


@pytest.mark.anyio
async def test_hydra_responses_match_spec(client: httpx.AsyncClient, emulator: OryEmulator) -> None:
    """Consent and login revocation and introspection responses, success and error, fit the spec."""
    consent = emulator.hydra.grant_consent("alice")
    emulator.hydra.create_login_session("alice")
    consent_path = "/admin/oauth2/auth/sessions/consent"
    login_path = "/admin/oauth2/auth/sessions/login"

    responses = [
        await client.post("/admin/oauth2/introspect", data={"token": consent.access_token}),
        await client.delete(consent_path, params={"subject": "alice"}),
        await client.delete(consent_path, params={"subject": "alice", "all": "true"}),
        await client.delete(login_path),
        await client.delete(login_path, params={"subject": "alice"}),
        await client.post("/admin/oauth2/introspect", data={"token": consent.access_token}),
    ]

    for response in responses:
        assert_matches_spec(response)
    assert [r.status_code for r in responses] == [200, 400, 204, 400, 204, 200]


@pytest.mark.anyio
async def test_fault_responses_match_spec(client: httpx.AsyncClient, emulator: OryEmulator) -> None:
    """Injected 429 and 5xx responses fit the spec's default error responses."""
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.add_fault(Fault("get_identity", status=429, times=1))
    emulator.add_fault(Fault("get_identity", status=500, times=1))
    emulator.add_fault(Fault("revoke_consent_sessions", status=503, times=1))

    responses = [
        await client.get(f"/admin/identities/{identity_id}"),
        await client.get(f"/admin/identities/{identity_id}"),
        await client.delete(
            "/admin/oauth2/auth/sessions/consent", params={"subject": "a", "all": "true"}
        ),
    ]

    for response in responses:
        assert_matches_spec(response)
    assert [r.status_code for r in responses] == [429, 500, 503]
