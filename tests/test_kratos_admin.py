"""KratosAdmin against respx mocks that respond like the Kratos admin API."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
import stamina

from stale_tokens import (
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    InvalidResponseError,
    KratosAdmin,
    NotFoundError,
    PaginationError,
    ServerError,
    UnknownRouteError,
)

BASE = "http://127.0.0.1:4434"
API_KEY = "ory_pat_secret-key-value"
NIL_UUID = "00000000-0000-0000-0000-000000000000"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True) as mock:
        yield mock


def identity_json(identity_id: str, **fields: Any) -> dict[str, Any]:
    """Return an identity shaped like Kratos's admin API returns it."""
    return {
        "id": identity_id,
        "schema_id": "default",
        "schema_url": f"{BASE}/schemas/default",
        "state": "active",
        "traits": {"email": f"{identity_id[:4]}@example.org"},
        "metadata_public": None,
        "metadata_admin": None,
        "organization_id": None,
        "created_at": "2026-01-02T03:04:05.123456Z",
        "updated_at": "2026-01-02T03:04:05.123456789+02:00",
        **fields,
    }


def uuid(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012d}"


def page(start: int, count: int) -> list[dict[str, Any]]:
    return [identity_json(uuid(number)) for number in range(start, start + count)]


def kratos_error(code: int, status: str, message: str, **extra: str) -> dict[str, Any]:
    return {"error": {"code": code, "status": status, "message": message, **extra}}


NOT_FOUND_BODY = kratos_error(404, "Not Found", "Unable to locate the resource")

# Go's http.NotFound, which Kratos's router sends for a path it does not serve.
ROUTE_NOT_FOUND = httpx.Response(
    404, text="404 page not found\n", headers={"Content-Type": "text/plain; charset=utf-8"}
)


def patch_body(request: httpx.Request) -> Any:
    return json.loads(request.content)


async def collect(kratos: KratosAdmin, **options: Any) -> list[str]:
    return [identity.id async for identity in kratos.iter_identities(**options)]


async def test_iter_identities_follows_relative_keyset_links(router: respx.MockRouter) -> None:
    """Kratos >= 1.1 relative keyset links are followed until no next link is sent."""
    first_link = f'</admin/identities?page_size=2&page_token={NIL_UUID}>; rel="first"'
    route = router.get("/admin/identities").mock(
        side_effect=[
            httpx.Response(
                200,
                json=page(1, 2),
                headers={
                    "Link": f"{first_link},</admin/identities?page_size=2&page_token="
                    f'{uuid(2)}>; rel="next"'
                },
            ),
            httpx.Response(200, json=page(3, 1), headers={"Link": first_link}),
        ]
    )

    async with KratosAdmin(BASE, api_key=API_KEY, page_size=2) as kratos:
        ids = await collect(kratos)

    assert ids == [uuid(1), uuid(2), uuid(3)]
    first, second = (call.request for call in route.calls)
    assert dict(first.url.params) == {"page_size": "2"}
    assert dict(second.url.params) == {"page_size": "2", "page_token": uuid(2)}
    assert first.headers["Authorization"] == f"Bearer {API_KEY}"
    assert first.headers["User-Agent"].startswith("stale-tokens")
    assert second.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_iter_identities_follows_absolute_offset_links(router: respx.MockRouter) -> None:
    """Kratos 0.13 absolute links with base64 offset tokens and page parameters are followed."""
    token = "eyJvZmZzZXQiOiIyNTAiLCJ2IjoyfQ"
    first_token = "eyJvZmZzZXQiOiIwIiwidiI6Mn0"
    first_url = f"{BASE}/identities?page=0&page_size=250&page_token={first_token}&per_page=250"
    next_url = f"{BASE}/identities?page=1&page_size=250&page_token={token}&per_page=250"
    first_page = router.get("/admin/identities").mock(
        return_value=httpx.Response(
            200,
            json=page(1, 250),
            headers={
                "Link": f'<{first_url}>; rel="first",<{next_url}>; rel="next",'
                f'<{next_url}>; rel="last"',
                "X-Total-Count": "260",
            },
        )
    )
    second_page = router.get("/identities").mock(
        return_value=httpx.Response(200, json=page(251, 10), headers={"X-Total-Count": "260"})
    )

    async with KratosAdmin(BASE) as kratos:
        ids = await collect(kratos)

    assert len(ids) == 260
    assert ids[-1] == uuid(260)
    assert first_page.call_count == 1
    assert dict(second_page.calls.last.request.url.params) == {
        "page": "1",
        "page_size": "250",
        "page_token": token,
        "per_page": "250",
    }
    assert "Authorization" not in second_page.calls.last.request.headers


async def test_iter_identities_stops_on_full_page_without_next(router: respx.MockRouter) -> None:
    """A page as long as page_size but without a next link is the last one."""
    route = router.get("/admin/identities").mock(
        return_value=httpx.Response(
            200,
            json=page(1, 3),
            headers={"Link": f'</admin/identities?page_size=3&page_token={NIL_UUID}>; rel="first"'},
        )
    )

    async with KratosAdmin(BASE, page_size=3) as kratos:
        ids = await collect(kratos)

    assert ids == [uuid(1), uuid(2), uuid(3)]
    assert route.call_count == 1


async def test_iter_identities_follows_clamped_page_size(router: respx.MockRouter) -> None:
    """A page shorter than asked (Kratos clamps 1000 to 500) is followed when it has a next link."""
    route = router.get("/admin/identities").mock(
        side_effect=[
            httpx.Response(
                200,
                json=page(1, 500),
                headers={
                    "Link": f'</admin/identities?page_size=500&page_token={uuid(500)}>; rel="next"'
                },
            ),
            httpx.Response(200, json=page(501, 20)),
        ]
    )

    async with KratosAdmin(BASE) as kratos:
        ids = await collect(kratos, page_size=1000)

    assert len(ids) == 520
    assert route.calls[0].request.url.params["page_size"] == "1000"
    assert route.calls[1].request.url.params["page_size"] == "500"


async def test_iter_identities_rejects_repeated_token(router: respx.MockRouter) -> None:
    """A next link whose page token was already followed raises instead of looping."""
    link = f'</admin/identities?page_size=2&page_token={uuid(2)}>; rel="next"'
    route = router.get("/admin/identities").mock(
        side_effect=[
            httpx.Response(200, json=page(1, 2), headers={"Link": link}),
            httpx.Response(
                200,
                json=page(3, 2),
                headers={"Link": link.replace("page_size=2", "page_size=20")},
            ),
        ]
    )

    async with KratosAdmin(BASE, page_size=2) as kratos:
        with pytest.raises(PaginationError, match="already read"):
            await collect(kratos)

    assert route.call_count == 2


async def test_iter_identities_rejects_link_to_other_host(router: respx.MockRouter) -> None:
    """A next link to another host raises before the API key could be sent there."""
    router.get("/admin/identities").mock(
        return_value=httpx.Response(
            200,
            json=page(1, 1),
            headers={"Link": '<http://127.0.0.2:4434/admin/identities?page_token=x>; rel="next"'},
        )
    )

    async with KratosAdmin(BASE, api_key=API_KEY) as kratos:
        with pytest.raises(PaginationError, match=r"127\.0\.0\.2") as caught:
            await collect(kratos)

    assert API_KEY not in str(caught.value)


async def test_iter_identities_stops_on_empty_page_with_next(router: respx.MockRouter) -> None:
    """An empty page ends the listing although Kratos < 1.1 still sends next on empty results."""
    route = router.get("/admin/identities").mock(
        return_value=httpx.Response(
            200,
            json=[],
            headers={
                "Link": f'<{BASE}/identities?page=1&per_page=250>; rel="next"',
                "X-Total-Count": "0",
            },
        )
    )

    async with KratosAdmin(BASE) as kratos:
        ids = await collect(kratos)

    assert ids == []
    assert route.call_count == 1


async def test_iter_identities_skips_entry_without_id(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """Entries without an id are logged without their data, counted, and the page goes on."""
    entries: list[Any] = page(1, 3)
    entries[1] = {"traits": {"email": "leak@example.org"}, "state": "active"}
    entries.append("leak2@example.org")
    router.get("/admin/identities").mock(return_value=httpx.Response(200, json=entries))

    with caplog.at_level(logging.WARNING, logger="stale_tokens.kratos"):
        async with KratosAdmin(BASE) as kratos:
            ids = await collect(kratos)

    assert ids == [uuid(1), uuid(3)]
    assert kratos.skipped_identities == 2
    assert len(caplog.records) == 2
    assert "entry 1" in caplog.records[0].getMessage()
    assert "entry 3" in caplog.records[1].getMessage()
    assert "leak@example.org" not in caplog.text
    assert "leak2@example.org" not in caplog.text


async def test_iter_identity_pages_yields_lists(router: respx.MockRouter) -> None:
    """Pages are yielded as lists of Identity, one per response."""
    router.get("/admin/identities").mock(
        side_effect=[
            httpx.Response(
                200,
                json=page(1, 2),
                headers={"Link": f'</admin/identities?page_token={uuid(2)}>; rel="next"'},
            ),
            httpx.Response(200, json=page(3, 2)),
        ]
    )

    async with KratosAdmin(BASE) as kratos:
        pages = [
            [identity.id for identity in batch] async for batch in kratos.iter_identity_pages()
        ]

    assert pages == [[uuid(1), uuid(2)], [uuid(3), uuid(4)]]


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"[{", "not JSON"),
        (b'{"identities": []}', "JSON object"),
    ],
)
async def test_iter_identities_rejects_malformed_body(
    router: respx.MockRouter, content: bytes, detail: str
) -> None:
    """A 2xx body that is not a JSON array raises InvalidResponseError."""
    router.get("/admin/identities").mock(return_value=httpx.Response(200, content=content))

    async with KratosAdmin(BASE) as kratos:
        with pytest.raises(InvalidResponseError, match=detail):
            await collect(kratos)


async def test_get_identity_returns_identity(router: respx.MockRouter) -> None:
    """get_identity reads one identity with its metadata_admin."""
    body = identity_json(uuid(7), metadata_admin={"last_activity_at": "2026-01-01T00:00:00Z"})
    route = router.get(f"/admin/identities/{uuid(7)}").mock(
        return_value=httpx.Response(200, json=body)
    )

    async with KratosAdmin(BASE) as kratos:
        identity = await kratos.get_identity(uuid(7))

    assert identity.id == uuid(7)
    assert identity.metadata_admin == {"last_activity_at": "2026-01-01T00:00:00Z"}
    assert route.calls.last.request.method == "GET"


async def test_get_identity_raises_not_found(router: respx.MockRouter) -> None:
    """A 404 becomes NotFoundError with Kratos's message and request id."""
    router.get(f"/admin/identities/{uuid(8)}").mock(
        return_value=httpx.Response(
            404,
            json=kratos_error(404, "Not Found", "Unable to locate the resource", request="req-1"),
        )
    )

    async with KratosAdmin(BASE) as kratos:
        with pytest.raises(NotFoundError) as caught:
            await kratos.get_identity(uuid(8))

    assert caught.value.status_code == 404
    assert caught.value.error_message == "Unable to locate the resource"
    assert caught.value.request_id == "req-1"
    assert caught.value.operation == "get identity"


async def test_get_identity_quotes_id(router: respx.MockRouter) -> None:
    """An id with a slash stays one path segment instead of reaching another endpoint."""
    route = router.get("/admin/identities/a%2Fsessions").mock(
        return_value=httpx.Response(200, json=identity_json("a/sessions"))
    )

    async with KratosAdmin(BASE) as kratos:
        identity = await kratos.get_identity("a/sessions")

    assert identity.id == "a/sessions"
    assert route.calls.last.request.url.raw_path == b"/admin/identities/a%2Fsessions"


async def test_get_identity_rejects_empty_id() -> None:
    """An empty id raises before any request, as it would address the listing."""
    async with KratosAdmin(BASE) as kratos:
        with pytest.raises(ConfigurationError, match="identity_id"):
            await kratos.get_identity("")


@pytest.mark.parametrize("operation", ["move", "copy", "test", "merge"])
async def test_patch_identity_rejects_unsupported_op(operation: str) -> None:
    """JSON Patch ops Kratos rejects raise ConfigurationError before sending."""
    with respx.mock(assert_all_mocked=True) as mock:
        async with KratosAdmin(BASE) as kratos:
            with pytest.raises(ConfigurationError, match=repr(operation)):
                await kratos.patch_identity(
                    uuid(1), [{"op": operation, "path": "/traits/a", "from": "/traits/b"}]
                )

    assert mock.calls.call_count == 0


async def test_patch_identity_sends_operations(router: respx.MockRouter) -> None:
    """patch_identity sends the operations as the JSON body of a PATCH."""
    operations = [{"op": "replace", "path": "/traits/role", "value": "admin"}]
    route = router.patch(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(200, json=identity_json(uuid(1)))
    )

    async with KratosAdmin(BASE, api_key=API_KEY) as kratos:
        identity = await kratos.patch_identity(uuid(1), operations)

    assert identity.id == uuid(1)
    request = route.calls.last.request
    assert patch_body(request) == operations
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_patch_identity_does_not_retry_500(router: respx.MockRouter) -> None:
    """A plain patch is sent once on 500, since Kratos may have applied it."""
    route = router.patch(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(500, json=kratos_error(500, "Internal Server Error", "boom"))
    )

    async with KratosAdmin(BASE) as kratos:
        with pytest.raises(ServerError):
            await kratos.patch_identity(uuid(1), [{"op": "remove", "path": "/traits/x"}])

    assert route.call_count == 1


async def test_patch_identity_retries_500_when_idempotent(router: respx.MockRouter) -> None:
    """A patch marked idempotent is retried on 500."""
    route = router.patch(f"/admin/identities/{uuid(1)}").mock(
        side_effect=[httpx.Response(502), httpx.Response(200, json=identity_json(uuid(1)))]
    )

    async with KratosAdmin(BASE) as kratos:
        operations = [{"op": "replace", "path": "/traits/role", "value": "user"}]
        await kratos.patch_identity(uuid(1), operations, idempotent=True)

    assert route.call_count == 2


async def test_set_metadata_admin_sends_add_per_key(router: respx.MockRouter) -> None:
    """Each key becomes one add under /metadata_admin, with ~ and / escaped."""
    route = router.patch(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(200, json=identity_json(uuid(1)))
    )

    async with KratosAdmin(BASE) as kratos:
        await kratos.set_metadata_admin(
            uuid(1),
            {
                "last_activity_at": "2026-03-01T00:00:00Z",
                ("last_activity_by_kind", "oauth2"): "2026-03-01T00:00:00Z",
                ("a/b", "c~d"): 1,
            },
        )

    assert patch_body(route.calls.last.request) == [
        {"op": "add", "path": "/metadata_admin/last_activity_at", "value": "2026-03-01T00:00:00Z"},
        {
            "op": "add",
            "path": "/metadata_admin/last_activity_by_kind/oauth2",
            "value": "2026-03-01T00:00:00Z",
        },
        {"op": "add", "path": "/metadata_admin/a~1b/c~0d", "value": 1},
    ]


def kratos_013_patch_error() -> httpx.Response:
    """Return the 400 Kratos 0.13 sends for an add below a null or missing parent."""
    return httpx.Response(
        400,
        json=kratos_error(
            400,
            "Bad Request",
            "add operation does not apply: doc is missing path: /metadata_admin/stale_tokens/warn",
            reason="An error occured when applying the JSON patch",
        ),
    )


async def test_set_metadata_admin_falls_back_on_null_parent(router: respx.MockRouter) -> None:
    """On Kratos 0.13 a null metadata_admin is replaced by one object holding every value."""
    patch = router.patch(f"/admin/identities/{uuid(1)}").mock(
        side_effect=[
            kratos_013_patch_error(),
            httpx.Response(200, json=identity_json(uuid(1), metadata_admin={"x": 1})),
        ]
    )
    router.get(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(200, json=identity_json(uuid(1)))
    )

    async with KratosAdmin(BASE) as kratos:
        await kratos.set_metadata_admin(
            uuid(1), {"last_activity_at": "t1", ("stale_tokens", "warn"): "e1"}
        )

    assert patch_body(patch.calls[1].request) == [
        {
            "op": "add",
            "path": "/metadata_admin",
            "value": {"last_activity_at": "t1", "stale_tokens": {"warn": "e1"}},
        }
    ]


async def test_set_metadata_admin_fallback_keeps_other_keys(router: respx.MockRouter) -> None:
    """On Kratos 0.13 only the missing parent is added, so existing keys are never rewritten."""
    patch = router.patch(f"/admin/identities/{uuid(1)}").mock(
        side_effect=[
            kratos_013_patch_error(),
            httpx.Response(200, json=identity_json(uuid(1))),
        ]
    )
    existing = {"account_type": "regular", "nested": {"keep": True}, "stale_tokens": None}
    router.get(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(200, json=identity_json(uuid(1), metadata_admin=existing))
    )

    async with KratosAdmin(BASE) as kratos:
        await kratos.set_metadata_admin(
            uuid(1),
            {
                ("stale_tokens", "warn"): "e1",
                ("stale_tokens", "revoke"): "e1",
                ("nested", "deeper", "key"): 2,
                "top": 3,
            },
        )

    assert patch_body(patch.calls[1].request) == [
        {
            "op": "add",
            "path": "/metadata_admin/stale_tokens",
            "value": {"warn": "e1", "revoke": "e1"},
        },
        {"op": "add", "path": "/metadata_admin/nested/deeper", "value": {"key": 2}},
        {"op": "add", "path": "/metadata_admin/top", "value": 3},
    ]


async def test_set_metadata_admin_reraises_other_400(router: respx.MockRouter) -> None:
    """A 400 while every parent exists has another cause and is raised without a second PATCH."""
    patch = router.patch(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(
            400,
            json=kratos_error(
                400, "Bad Request", "The request was malformed", reason="traits are invalid"
            ),
        )
    )
    router.get(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(200, json=identity_json(uuid(1), metadata_admin={"a": {}}))
    )

    async with KratosAdmin(BASE) as kratos:
        with pytest.raises(BadRequestError) as caught:
            await kratos.set_metadata_admin(uuid(1), {("a", "b"): 1})

    assert caught.value.reason == "traits are invalid"
    assert patch.call_count == 1


@pytest.mark.parametrize("value", [datetime(2026, 1, 1, tzinfo=UTC), float("nan"), {1, 2}])
async def test_set_metadata_admin_rejects_non_json_value(value: object) -> None:
    """A value JSON cannot encode raises ConfigurationError before any request."""
    with respx.mock(assert_all_mocked=True) as mock:
        async with KratosAdmin(BASE) as kratos:
            with pytest.raises(ConfigurationError, match="format_timestamp"):
                await kratos.set_metadata_admin(uuid(1), {"last_activity_at": value})

    assert mock.calls.call_count == 0


@pytest.mark.parametrize(
    "values",
    [{}, {"": 1}, {(): 1}, {("a", ""): 1}, {"a": 1, ("a", "b"): 2}, {"a": 1, ("a",): 2}],
)
async def test_set_metadata_admin_rejects_bad_keys(values: dict[Any, Any]) -> None:
    """Empty, malformed or overlapping keys raise before any request."""
    async with KratosAdmin(BASE) as kratos:
        with pytest.raises(ConfigurationError):
            await kratos.set_metadata_admin(uuid(1), values)


async def test_remove_metadata_admin_removes_present_keys(router: respx.MockRouter) -> None:
    """Only keys that exist are removed, since Kratos returns 400 to removing a missing path."""
    metadata = {"a": 1, "b": {"c": 2}, "d": "text"}
    router.get(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(200, json=identity_json(uuid(1), metadata_admin=metadata))
    )
    patch = router.patch(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(200, json=identity_json(uuid(1), metadata_admin={"d": "text"}))
    )

    async with KratosAdmin(BASE) as kratos:
        identity = await kratos.remove_metadata_admin(
            uuid(1), ["a", ("b", "c"), "missing", ("d", "e")]
        )

    assert identity.metadata_admin == {"d": "text"}
    assert patch_body(patch.calls.last.request) == [
        {"op": "remove", "path": "/metadata_admin/a"},
        {"op": "remove", "path": "/metadata_admin/b/c"},
    ]


async def test_remove_metadata_admin_rejects_bare_string() -> None:
    """A single string instead of a list of keys raises instead of removing its letters."""
    async with KratosAdmin(BASE) as kratos:
        with pytest.raises(ConfigurationError, match=r"\['abc'\]"):
            await kratos.remove_metadata_admin(uuid(1), "abc")


async def test_remove_metadata_admin_skips_patch_when_absent(router: respx.MockRouter) -> None:
    """When no key is present nothing is written and the identity read is returned."""
    get = router.get(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(200, json=identity_json(uuid(1)))
    )

    async with KratosAdmin(BASE) as kratos:
        identity = await kratos.remove_metadata_admin(uuid(1), ["gone"])

    assert identity.id == uuid(1)
    assert get.call_count == 1


async def test_remove_metadata_admin_rereads_after_race(router: respx.MockRouter) -> None:
    """A key removed by someone else between read and write leads to a fresh read and patch."""
    router.get(f"/admin/identities/{uuid(1)}").mock(
        side_effect=[
            httpx.Response(200, json=identity_json(uuid(1), metadata_admin={"a": 1, "b": 2})),
            httpx.Response(200, json=identity_json(uuid(1), metadata_admin={"b": 2})),
        ]
    )
    patch = router.patch(f"/admin/identities/{uuid(1)}").mock(
        side_effect=[
            httpx.Response(400, json=kratos_error(400, "Bad Request", "missing path")),
            httpx.Response(200, json=identity_json(uuid(1), metadata_admin={})),
        ]
    )

    async with KratosAdmin(BASE) as kratos:
        await kratos.remove_metadata_admin(uuid(1), ["a", "b"])

    assert patch_body(patch.calls[1].request) == [{"op": "remove", "path": "/metadata_admin/b"}]


async def test_list_sessions_follows_offset_links(router: respx.MockRouter) -> None:
    """Session pages with offset tokens are followed and the active filter is sent."""
    token = "eyJvZmZzZXQiOiIxIiwidiI6Mn0"
    route = router.get(f"/admin/identities/{uuid(1)}/sessions").mock(
        side_effect=[
            httpx.Response(
                200,
                json=[{"id": "s1", "active": True}],
                headers={
                    "Link": f"</admin/identities/{uuid(1)}/sessions?active=true&page_size=1"
                    f'&page_token={token}>; rel="next"',
                    "X-Total-Count": "2",
                },
            ),
            httpx.Response(
                200,
                json=[{"id": "s2", "active": True}, {"active": True}],
                headers={"X-Total-Count": "2"},
            ),
        ]
    )

    async with KratosAdmin(BASE) as kratos:
        sessions = await kratos.list_sessions(uuid(1), active=True)

    assert [session.id for session in sessions] == ["s1", "s2"]
    assert kratos.skipped_sessions == 1
    assert dict(route.calls[0].request.url.params) == {"active": "true"}
    assert route.calls[1].request.url.params["page_token"] == token


@pytest.mark.parametrize(
    ("response", "expected"),
    [(httpx.Response(204), True), (httpx.Response(404, json=NOT_FOUND_BODY), False)],
)
async def test_delete_sessions_reports_whether_any_existed(
    router: respx.MockRouter, response: httpx.Response, expected: bool
) -> None:
    """delete_sessions maps 204 to True and Kratos's JSON 404 for no sessions to False."""
    route = router.delete(f"/admin/identities/{uuid(1)}/sessions").mock(return_value=response)

    async with KratosAdmin(BASE) as kratos:
        assert await kratos.delete_sessions(uuid(1)) is expected

    assert route.call_count == 1


@pytest.mark.parametrize(
    ("response", "expected"),
    [(httpx.Response(204), True), (httpx.Response(404, json=NOT_FOUND_BODY), False)],
)
async def test_delete_identity_reports_whether_deleted(
    router: respx.MockRouter, response: httpx.Response, expected: bool
) -> None:
    """delete_identity maps 204 to True and Kratos's JSON 404 to False."""
    route = router.delete(f"/admin/identities/{uuid(1)}").mock(return_value=response)

    async with KratosAdmin(BASE) as kratos:
        assert await kratos.delete_identity(uuid(1)) is expected

    assert route.calls.last.request.method == "DELETE"


@pytest.mark.parametrize(
    "call",
    [
        lambda kratos: kratos.delete_sessions(uuid(1)),
        lambda kratos: kratos.delete_identity(uuid(1)),
        lambda kratos: kratos.get_identity(uuid(1)),
    ],
    ids=["delete_sessions", "delete_identity", "get_identity"],
)
async def test_kratos_admin_plain_404_is_unknown_route(
    router: respx.MockRouter, call: Callable[[KratosAdmin], Awaitable[object]]
) -> None:
    """A plain-text 404 under a wrong path prefix raises UnknownRouteError, never False."""
    route = router.route(path__startswith="/kratos/admin/identities/").mock(
        return_value=ROUTE_NOT_FOUND
    )

    async with KratosAdmin(f"{BASE}/kratos") as kratos:
        with pytest.raises(UnknownRouteError) as caught:
            await call(kratos)

    assert not isinstance(caught.value, NotFoundError)
    assert caught.value.status_code == 404
    assert f"base_url '{BASE}/kratos'" in str(caught.value)
    assert "404 page not found" in str(caught.value)
    assert route.call_count == 1
    assert route.calls.last.request.url.path.startswith(f"/kratos/admin/identities/{uuid(1)}")


async def test_set_state_replaces_state(router: respx.MockRouter) -> None:
    """set_state sends one replace of /state."""
    route = router.patch(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(200, json=identity_json(uuid(1), state="inactive"))
    )

    async with KratosAdmin(BASE) as kratos:
        identity = await kratos.set_state(uuid(1), "inactive")

    assert identity.state == "inactive"
    assert patch_body(route.calls.last.request) == [
        {"op": "replace", "path": "/state", "value": "inactive"}
    ]


async def test_set_state_rejects_unknown_state() -> None:
    """A state other than active or inactive raises before any request."""
    async with KratosAdmin(BASE) as kratos:
        with pytest.raises(ConfigurationError, match="'deleted'"):
            await kratos.set_state(uuid(1), "deleted")  # type: ignore[arg-type]


async def test_kratos_admin_hides_api_key(router: respx.MockRouter) -> None:
    """The API key appears neither in repr nor in error messages."""
    router.get(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(401, json=kratos_error(401, "Unauthorized", "no"))
    )

    async with KratosAdmin(BASE, api_key=API_KEY) as kratos:
        with pytest.raises(Exception) as caught:  # noqa: PT011
            await kratos.get_identity(uuid(1))

    assert API_KEY not in repr(kratos)
    assert API_KEY not in str(caught.value)
    assert API_KEY not in repr(caught.value)


async def test_kratos_admin_keeps_injected_client_open(router: respx.MockRouter) -> None:
    """An injected client is used with the client's auth headers and left open."""
    route = router.get(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(200, json=identity_json(uuid(1)))
    )

    async with httpx.AsyncClient() as client:
        async with KratosAdmin(BASE, client=client, headers={"X-Tenant": "t1"}) as kratos:
            await kratos.get_identity(uuid(1))
        assert not client.is_closed

    assert route.calls.last.request.headers["X-Tenant"] == "t1"


async def test_kratos_admin_used_after_close(
    router: respx.MockRouter,
) -> None:
    """A call after the async with block exited raises ClientClosedError without a request."""
    async with KratosAdmin(BASE) as kratos:
        pass

    with pytest.raises(ClientClosedError, match="Create the client per application start"):
        await kratos.delete_sessions(uuid(1))
    with pytest.raises(ClientClosedError, match="async with block exited"):
        async with kratos:
            pass

    assert router.calls.call_count == 0


async def test_kratos_admin_closed_injected_client(
    router: respx.MockRouter,
) -> None:
    """A closed injected httpx client raises ClientClosedError naming client=."""
    client = httpx.AsyncClient()
    await client.aclose()
    kratos = KratosAdmin(BASE, client=client)

    with pytest.raises(ClientClosedError, match="passed as client= was closed") as caught:
        await kratos.get_identity(uuid(1))

    assert isinstance(caught.value, RuntimeError)
    assert router.calls.call_count == 0


async def test_kratos_admin_sends_configured_timeouts(router: respx.MockRouter) -> None:
    """The four timeouts reach each request of the client KratosAdmin creates."""
    route = router.get(f"/admin/identities/{uuid(1)}").mock(
        return_value=httpx.Response(200, json=identity_json(uuid(1)))
    )

    async with KratosAdmin(
        BASE, connect_timeout=1.5, read_timeout=2.5, write_timeout=3.5, pool_timeout=4.5
    ) as kratos:
        await kratos.get_identity(uuid(1))

    assert route.calls.last.request.extensions["timeout"] == {
        "connect": 1.5,
        "read": 2.5,
        "write": 3.5,
        "pool": 4.5,
    }


async def test_kratos_admin_closes_owned_client() -> None:
    """The client KratosAdmin creates is closed by aclose."""
    kratos = KratosAdmin(BASE)
    await kratos.aclose()

    assert kratos._client.is_closed


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"base_url": "127.0.0.1:4434"}, "base_url"),
        ({"base_url": "ftp://127.0.0.1"}, "base_url"),
        ({"base_url": f"{BASE}?x=1"}, "query"),
        ({"page_size": 0}, "page_size"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_retry_wait": -1}, "max_retry_wait"),
        ({"read_timeout": 0}, "read_timeout"),
        ({"api_key": ""}, "api_key"),
        ({"transport": httpx.MockTransport(lambda _: httpx.Response(200))}, "client="),
    ],
)
def test_kratos_admin_rejects_invalid_options(options: dict[str, Any], fragment: str) -> None:
    """Invalid options raise ConfigurationError naming the option."""
    arguments: dict[str, Any] = {"base_url": BASE, **options}
    if "transport" in options:
        arguments["client"] = httpx.AsyncClient()

    with pytest.raises(ConfigurationError, match=fragment):
        KratosAdmin(**arguments)
