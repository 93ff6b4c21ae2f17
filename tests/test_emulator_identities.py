"""The emulator's Kratos identity endpoints behave like Kratos v26 (and v0.13 where asked)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from emulator_helpers import MutableClock, open_client
from stale_tokens.testing import OryEmulator

START = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
NIL = "00000000-0000-0000-0000-000000000000"
PATCH_REASON = "An error occured when applying the JSON patch"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(START)


@pytest.fixture
def emulator(clock: MutableClock) -> OryEmulator:
    return OryEmulator(seed=7, clock=clock)


@pytest.fixture
async def client(emulator: OryEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(emulator) as client:
        yield client


def seed_identities(emulator: OryEmulator, count: int) -> list[str]:
    ids = [emulator.kratos.add_identity(traits={"n": n})["id"] for n in range(count)]
    return sorted(ids)


def parse_links(header: str) -> dict[str, str]:
    links: dict[str, str] = {}
    for part in header.split(","):
        target, _, rel = part.partition(";")
        links[rel.strip().removeprefix('rel="').removesuffix('"')] = target.strip()[1:-1]
    return links


async def patch(
    client: httpx.AsyncClient, identity_id: str, *operations: dict[str, Any]
) -> httpx.Response:
    return await client.patch(f"/admin/identities/{identity_id}", json=list(operations))


@pytest.mark.anyio
async def test_list_first_page_links_first_and_next(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """A first keyset page carries relative first and next links and no X-Total-Count."""
    ids = seed_identities(emulator, 5)

    response = await client.get("/admin/identities", params={"page_size": 2})

    assert response.status_code == 200
    assert [identity["id"] for identity in response.json()] == ids[:2]
    assert response.headers["link"] == (
        f'</admin/identities?page_size=2&page_token={NIL}>; rel="first",'
        f'</admin/identities?page_size=2&page_token={ids[1]}>; rel="next"'
    )
    assert "x-total-count" not in response.headers
    assert response.headers["cache-control"] == "private, no-cache, no-store, must-revalidate"
    assert emulator.requests["list_identities"] == 1


@pytest.mark.anyio
async def test_list_full_last_page_has_no_next(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """A last page that is exactly full has no next link, because the server reads size + 1."""
    ids = seed_identities(emulator, 4)

    response = await client.get("/admin/identities", params={"page_size": 2, "page_token": ids[1]})

    assert [identity["id"] for identity in response.json()] == ids[2:]
    assert set(parse_links(response.headers["link"])) == {"first"}


@pytest.mark.anyio
async def test_list_follows_next_through_every_identity(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """Following next links visits every identity once, in id order."""
    ids = seed_identities(emulator, 7)
    seen: list[str] = []
    url: str | None = "/admin/identities?page_size=3"

    while url is not None:
        response = await client.get(url)
        seen.extend(identity["id"] for identity in response.json())
        url = parse_links(response.headers["link"]).get("next")

    assert seen == ids
    assert emulator.requests["list_identities"] == 3


@pytest.mark.anyio
async def test_list_clamps_page_size_to_500(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """A page_size above 500 is clamped silently, and the links show the clamped size."""
    seed_identities(emulator, 501)

    response = await client.get("/admin/identities", params={"page_size": 1000})

    assert response.status_code == 200
    assert len(response.json()) == 500
    links = parse_links(response.headers["link"])
    assert "page_size=500" in links["next"]


@pytest.mark.anyio
@pytest.mark.parametrize("page_size", ["0", "-3"])
async def test_list_non_positive_page_size_uses_default(
    client: httpx.AsyncClient, emulator: OryEmulator, page_size: str
) -> None:
    """A page_size of zero or less falls back to 250."""
    seed_identities(emulator, 1)

    response = await client.get("/admin/identities", params={"page_size": page_size})

    assert response.status_code == 200
    assert "page_size=250" in parse_links(response.headers["link"])["first"]


@pytest.mark.anyio
async def test_list_rejects_non_integer_page_size(client: httpx.AsyncClient) -> None:
    """A page_size that is not an integer is a 400 in herodot's shape."""
    response = await client.get(
        "/admin/identities", params={"page_size": "ten"}, headers={"X-Request-ID": "req-1"}
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == 400
    assert error["status"] == "Bad Request"
    assert error["request"] == "req-1"
    assert error["message"] == "The request was malformed or contained invalid parameters"


@pytest.mark.anyio
async def test_list_rejects_crafted_page_token(client: httpx.AsyncClient) -> None:
    """A page token that is not a UUID is rejected with Kratos's exact reason."""
    response = await client.get("/admin/identities", params={"page_token": "eyJvZmZzZXQiOjF9"})

    assert response.status_code == 400
    assert response.json()["error"]["reason"] == (
        "The page token is invalid, do not craft your own page tokens"
    )


@pytest.mark.anyio
async def test_list_link_keeps_other_parameters_sorted(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """Other query parameters survive in the links, keys sorted like url.Values.Encode."""
    seed_identities(emulator, 3)

    response = await client.get(
        "/admin/identities?zeta=a+b&page_size=1&consistency=strong&alpha=%2F"
    )

    first = parse_links(response.headers["link"])["first"]
    assert first == (
        f"/admin/identities?alpha=%2F&consistency=strong&page_size=1&page_token={NIL}&zeta=a+b"
    )


@pytest.mark.anyio
async def test_list_per_page_without_page_is_page_size(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """per_page alone selects keyset mode with that page size."""
    seed_identities(emulator, 3)

    response = await client.get("/admin/identities", params={"per_page": 2})

    assert len(response.json()) == 2
    assert "next" in parse_links(response.headers["link"])
    assert "x-total-count" not in response.headers


@pytest.mark.anyio
async def test_list_ids_filter_returns_only_those(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """The ids filter returns the named identities and ignores unknown ones."""
    ids = seed_identities(emulator, 4)
    unknown = "11111111-1111-4111-8111-111111111111"

    response = await client.get(
        "/admin/identities", params=[("ids", ids[3]), ("ids", ids[0]), ("ids", unknown)]
    )

    assert [identity["id"] for identity in response.json()] == [ids[0], ids[3]]


@pytest.mark.anyio
async def test_list_ids_filter_rejects_non_uuid(client: httpx.AsyncClient) -> None:
    """An ids value that is not a UUID is a 400."""
    response = await client.get("/admin/identities", params={"ids": "nope"})

    assert response.status_code == 400


@pytest.mark.anyio
async def test_list_ids_filter_rejects_more_than_500(client: httpx.AsyncClient) -> None:
    """More than 500 ids is a 400."""
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(501)]

    response = await client.get("/admin/identities", params=[("ids", i) for i in ids])

    assert response.status_code == 400


@pytest.mark.anyio
async def test_list_rejects_combined_filters(client: httpx.AsyncClient) -> None:
    """Two different filters in one request are a 400."""
    response = await client.get(
        "/admin/identities",
        params={"ids": NIL, "credentials_identifier": "someone@example.com"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["reason"] == "You cannot combine multiple filters in this API"


@pytest.mark.anyio
async def test_list_credentials_identifier_matches_case_insensitively(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """credentials_identifier finds a password identifier, normalised like an email."""
    emulator.kratos.add_identity(traits={})
    wanted = emulator.kratos.add_identity(
        traits={},
        credentials={"password": {"type": "password", "identifiers": ["ada@example.com"]}},
    )

    response = await client.get(
        "/admin/identities", params={"credentials_identifier": "Ada@Example.com"}
    )

    assert [identity["id"] for identity in response.json()] == [wanted["id"]]
    assert response.json()[0]["credentials"]["password"]["identifiers"] == ["ada@example.com"]


@pytest.mark.anyio
async def test_list_shows_credentials_only_when_requested(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """A listing leaves credentials out unless include_credential names a type."""
    emulator.kratos.add_identity(
        credentials={"password": {"identifiers": ["a"], "config": {"hashed_password": "x"}}}
    )

    plain = await client.get("/admin/identities")
    expanded = await client.get("/admin/identities", params={"include_credential": "password"})
    invalid = await client.get("/admin/identities", params={"include_credential": "magic"})

    assert "credentials" not in plain.json()[0]
    assert expanded.json()[0]["credentials"]["password"]["config"] == {"hashed_password": "x"}
    assert invalid.status_code == 400


@pytest.mark.anyio
async def test_list_legacy_page_mode_counts_total(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """The page parameter switches to offset mode with X-Total-Count."""
    ids = seed_identities(emulator, 5)

    response = await client.get("/admin/identities", params={"page": 1, "per_page": 2})

    assert [identity["id"] for identity in response.json()] == ids[2:4]
    assert response.headers["x-total-count"] == "5"
    assert set(parse_links(response.headers["link"])) == {"first", "next", "prev", "last"}


@pytest.mark.anyio
async def test_list_legacy_page_mode_rejects_deep_pages(client: httpx.AsyncClient) -> None:
    """page * per_page above 1000 is a 400 in offset mode."""
    response = await client.get("/admin/identities", params={"page": 5, "per_page": 250})

    assert response.status_code == 400


@pytest.mark.anyio
async def test_list_legacy_page_mode_empty_links_loop(client: httpx.AsyncClient) -> None:
    """An empty collection gets first, next and prev links, as ory/x writes them."""
    response = await client.get("/admin/identities", params={"page": 0})

    assert response.json() == []
    assert response.headers["x-total-count"] == "0"
    assert set(parse_links(response.headers["link"])) == {"first", "next", "prev"}


@pytest.mark.anyio
async def test_list_page_token_wins_over_page(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """With page_token present, page is ignored and keyset mode applies."""
    ids = seed_identities(emulator, 3)

    response = await client.get(
        "/admin/identities", params={"page": 1, "page_token": ids[0], "page_size": 5}
    )

    assert [identity["id"] for identity in response.json()] == ids[1:]
    assert "x-total-count" not in response.headers


@pytest.mark.anyio
async def test_list_deep_page_starts_after_token(emulator: OryEmulator) -> None:
    """A page deep inside 5,000 loaded identities starts right after its token."""
    exported = [{"id": str(uuid.UUID(int=n * 7919 + 1, version=4))} for n in range(5_000)]
    emulator.kratos.load_identities(exported)
    ids = emulator.kratos.all_ids()
    token = ids[3_000]

    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://o") as client:
        response = await client.get(
            "/admin/identities", params={"page_size": 500, "page_token": token}
        )

    assert [identity["id"] for identity in response.json()] == ids[3_001:3_501]


@pytest.mark.anyio
async def test_identity_json_fields_match_kratos(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """GET renders null metadata and organization, no addresses, and a computed schema_url."""
    created = emulator.kratos.add_identity(traits={"email": "a@example.com"})

    response = await client.get(f"/admin/identities/{created['id']}")

    body = response.json()
    assert response.status_code == 200
    assert body == created
    assert body["metadata_admin"] is None
    assert body["metadata_public"] is None
    assert body["organization_id"] is None
    assert "verifiable_addresses" not in body
    assert "recovery_addresses" not in body
    assert "credentials" not in body
    assert body["schema_url"] == "http://127.0.0.1:4433/schemas/ZGVmYXVsdA"
    assert body["created_at"] == "2026-03-01T12:00:00.123456Z"


@pytest.mark.anyio
async def test_identity_timestamps_keep_offset_and_trim_zeros(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """Timestamps keep a non-UTC offset and drop trailing fraction zeros, like Go."""
    created = emulator.kratos.add_identity(created_at="2021-08-17T12:18:01.690700+02:00")

    body = (await client.get(f"/admin/identities/{created['id']}")).json()

    assert body["created_at"] == "2021-08-17T12:18:01.6907+02:00"


@pytest.mark.anyio
async def test_get_identity_unknown_and_malformed_are_404(client: httpx.AsyncClient) -> None:
    """Both an unknown UUID and a malformed id return 404."""
    unknown = await client.get("/admin/identities/11111111-1111-4111-8111-111111111111")
    malformed = await client.get("/admin/identities/not-a-uuid")

    assert unknown.status_code == 404
    assert malformed.status_code == 404
    assert unknown.json() == {
        "error": {"code": 404, "status": "Not Found", "message": "Unable to locate the resource"}
    }


@pytest.mark.anyio
async def test_get_identity_shows_credentials_without_config(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """GET shows credentials without config unless include_credential requests it."""
    created = emulator.kratos.add_identity(
        credentials={
            "password": {"identifiers": ["a"], "config": {"hashed_password": "x"}},
            "totp": {"identifiers": ["a"], "config": {"totp_url": "otpauth://x"}},
        }
    )

    plain = (await client.get(f"/admin/identities/{created['id']}")).json()
    full = (
        await client.get(
            f"/admin/identities/{created['id']}", params={"include_credential": "password"}
        )
    ).json()
    invalid = await client.get(
        f"/admin/identities/{created['id']}", params={"include_credential": "magic"}
    )

    assert "config" not in plain["credentials"]["password"]
    assert full["credentials"]["password"]["config"] == {"hashed_password": "x"}
    assert "config" not in full["credentials"]["totp"]
    assert invalid.status_code == 400


@pytest.mark.anyio
async def test_patch_add_under_null_metadata_admin(
    client: httpx.AsyncClient, emulator: OryEmulator, clock: MutableClock
) -> None:
    """add creates a null metadata_admin's object and bumps updated_at."""
    identity_id = emulator.kratos.add_identity()["id"]
    clock.now = START + timedelta(minutes=5)

    response = await patch(
        client, identity_id, {"op": "add", "path": "/metadata_admin/last_seen", "value": "t"}
    )

    assert response.status_code == 200
    assert response.json()["metadata_admin"] == {"last_seen": "t"}
    assert response.json()["updated_at"] == "2026-03-01T12:05:00.123456Z"
    assert emulator.kratos.identity_json(identity_id)["metadata_admin"] == {"last_seen": "t"}
    assert emulator.writes[identity_id] == 1


@pytest.mark.anyio
async def test_patch_add_keeps_other_metadata_keys(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """add of one key keeps every other key of metadata_admin, nested parents included."""
    identity_id = emulator.kratos.add_identity(metadata_admin={"keep": 1})["id"]

    response = await patch(
        client, identity_id, {"op": "add", "path": "/metadata_admin/a/b/c", "value": True}
    )

    assert response.json()["metadata_admin"] == {"keep": 1, "a": {"b": {"c": True}}}


@pytest.mark.anyio
async def test_patch_replace_missing_key_acts_as_add(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """replace on a missing key creates it on Kratos >= 1.0."""
    identity_id = emulator.kratos.add_identity()["id"]

    response = await patch(
        client, identity_id, {"op": "replace", "path": "/metadata_admin/x", "value": 1}
    )

    assert response.status_code == 200
    assert response.json()["metadata_admin"] == {"x": 1}


@pytest.mark.anyio
async def test_patch_replace_numeric_key_stays_strict(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """replace whose last segment is an integer stays a real replace and fails when missing."""
    identity_id = emulator.kratos.add_identity(metadata_admin={})["id"]

    response = await patch(
        client, identity_id, {"op": "replace", "path": "/metadata_admin/2024", "value": 1}
    )

    assert response.status_code == 400
    assert response.json()["error"]["reason"] == PATCH_REASON
    assert emulator.writes[identity_id] == 0


@pytest.mark.anyio
@pytest.mark.parametrize("operation", ["move", "copy", "test", "frobnicate"])
async def test_patch_rejects_unsupported_operations(
    client: httpx.AsyncClient, emulator: OryEmulator, operation: str
) -> None:
    """Only add, remove and replace are accepted."""
    identity_id = emulator.kratos.add_identity(traits={"a": 1})["id"]

    response = await patch(
        client, identity_id, {"op": operation, "path": "/traits/a", "from": "/traits/a", "value": 1}
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"unsupported operation: {operation}"


@pytest.mark.anyio
async def test_patch_remove_missing_path_is_400(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """remove of a path that does not exist is a 400."""
    identity_id = emulator.kratos.add_identity(metadata_admin={"a": 1})["id"]

    response = await patch(client, identity_id, {"op": "remove", "path": "/metadata_admin/b"})

    assert response.status_code == 400


@pytest.mark.anyio
async def test_patch_remove_metadata_admin_sets_null(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """remove of /metadata_admin leaves it null."""
    identity_id = emulator.kratos.add_identity(metadata_admin={"a": 1})["id"]

    response = await patch(client, identity_id, {"op": "remove", "path": "/metadata_admin"})

    assert response.status_code == 200
    assert response.json()["metadata_admin"] is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    ["/id", "/ID", "/credentials", "/Credentials", "/credentials/oidc/config", "/stateChangedAt"],
)
async def test_patch_denied_paths(
    client: httpx.AsyncClient, emulator: OryEmulator, path: str
) -> None:
    """The deny list matches case-insensitively, with a glob under /credentials/oidc/."""
    identity_id = emulator.kratos.add_identity()["id"]

    response = await patch(client, identity_id, {"op": "add", "path": path, "value": {}})

    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"patch includes denied path: {path}"
    assert response.json()["error"]["reason"] == PATCH_REASON


@pytest.mark.anyio
async def test_patch_state_changed_at_is_not_denied(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """/state_changed_at is writable because the deny entry is camelCase."""
    identity_id = emulator.kratos.add_identity()["id"]

    response = await patch(
        client,
        identity_id,
        {"op": "replace", "path": "/state_changed_at", "value": "2020-01-01T00:00:00Z"},
    )

    assert response.status_code == 200
    assert response.json()["state_changed_at"] == "2020-01-01T00:00:00Z"


@pytest.mark.anyio
async def test_patch_password_credentials_are_patchable(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """On v26 a non-OIDC credential can be patched."""
    identity_id = emulator.kratos.add_identity(
        credentials={"password": {"identifiers": ["a"], "config": {"hashed_password": "old"}}}
    )["id"]

    response = await patch(
        client,
        identity_id,
        {"op": "replace", "path": "/credentials/password/config/hashed_password", "value": "new"},
    )

    assert response.status_code == 200
    assert "config" not in response.json()["credentials"]["password"]
    stored = await client.get(
        f"/admin/identities/{identity_id}", params={"include_credential": "password"}
    )
    assert stored.json()["credentials"]["password"]["config"] == {"hashed_password": "new"}


@pytest.mark.anyio
async def test_patch_invalid_state_is_400(client: httpx.AsyncClient, emulator: OryEmulator) -> None:
    """A state other than active or inactive is rejected with Kratos's reason."""
    identity_id = emulator.kratos.add_identity()["id"]

    response = await patch(client, identity_id, {"op": "replace", "path": "/state", "value": "x"})

    assert response.status_code == 400
    assert response.json()["error"]["reason"] == (
        "The supplied state ('x') was not valid. Valid states are ('active', 'inactive')."
    )


@pytest.mark.anyio
async def test_patch_state_change_sets_state_changed_at(
    client: httpx.AsyncClient, emulator: OryEmulator, clock: MutableClock
) -> None:
    """Deactivating sets state_changed_at to now, echoed with nanoseconds."""
    identity_id = emulator.kratos.add_identity()["id"]
    clock.now = START + timedelta(days=1)

    response = await patch(
        client, identity_id, {"op": "replace", "path": "/state", "value": "inactive"}
    )

    echoed = response.json()["state_changed_at"]
    assert echoed.startswith("2026-03-02T12:00:00.123456")
    assert len(echoed.split(".")[1].rstrip("Z")) == 9
    stored = emulator.kratos.identity_json(identity_id)
    assert stored["state"] == "inactive"
    assert stored["state_changed_at"] == "2026-03-02T12:00:00.123456Z"


@pytest.mark.anyio
async def test_patch_is_all_or_nothing(client: httpx.AsyncClient, emulator: OryEmulator) -> None:
    """A failing operation leaves the earlier ones unapplied."""
    identity_id = emulator.kratos.add_identity(metadata_admin={"a": 1})["id"]
    before = emulator.kratos.identity_json(identity_id)

    response = await patch(
        client,
        identity_id,
        {"op": "add", "path": "/metadata_admin/b", "value": 2},
        {"op": "remove", "path": "/metadata_admin/missing"},
    )

    assert response.status_code == 400
    assert emulator.kratos.identity_json(identity_id) == before


@pytest.mark.anyio
async def test_patch_unknown_and_malformed_ids_are_404(client: httpx.AsyncClient) -> None:
    """PATCH on an unknown or malformed id is a 404."""
    operation = {"op": "add", "path": "/metadata_admin/a", "value": 1}

    unknown = await patch(client, "11111111-1111-4111-8111-111111111111", operation)
    malformed = await patch(client, "not-found", operation)

    assert unknown.status_code == 404
    assert malformed.status_code == 404


@pytest.mark.anyio
@pytest.mark.parametrize("body", [{"op": "add"}, "x", None])
async def test_patch_body_not_an_array_is_400(
    client: httpx.AsyncClient, emulator: OryEmulator, body: object
) -> None:
    """A body that is not a JSON Patch array is a 400."""
    identity_id = emulator.kratos.add_identity()["id"]

    response = await client.patch(f"/admin/identities/{identity_id}", json=body)

    assert response.status_code == 400


@pytest.mark.anyio
async def test_patch_revalidates_traits_against_schema(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """A metadata-only PATCH fails once the traits no longer fit their schema."""
    identity_id = emulator.kratos.add_identity(schema_id="customer", traits={"email": 1})["id"]

    def require_string_email(traits: Any) -> None:
        if not isinstance(traits.get("email"), str):
            raise ValueError("email must be a string")

    emulator.kratos.add_schema("customer", require_string_email)
    response = await patch(
        client, identity_id, {"op": "add", "path": "/metadata_admin/a", "value": 1}
    )

    assert response.status_code == 400
    assert response.json()["error"]["reason"] == "email must be a string"


@pytest.mark.anyio
async def test_patch_traits_must_stay_an_object(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """The default schema rejects traits that are not an object."""
    identity_id = emulator.kratos.add_identity()["id"]

    response = await patch(client, identity_id, {"op": "replace", "path": "/traits", "value": 3})

    assert response.status_code == 400


@pytest.mark.anyio
async def test_patch_unknown_schema_is_400(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """Switching to a schema id Kratos does not know is a 400."""
    identity_id = emulator.kratos.add_identity()["id"]

    response = await patch(
        client, identity_id, {"op": "replace", "path": "/schema_id", "value": "ghost"}
    )

    assert response.status_code == 400


@pytest.mark.anyio
async def test_v013_replace_missing_key_is_400(clock: MutableClock) -> None:
    """Kratos v0.13 follows RFC 6902: replace of a missing key fails."""
    emulator = OryEmulator(clock=clock, kratos_version="v0.13.0")
    identity_id = emulator.kratos.add_identity(metadata_admin={})["id"]

    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://o") as client:
        response = await patch(
            client, identity_id, {"op": "replace", "path": "/metadata_admin/x", "value": 1}
        )

    assert response.status_code == 400
    assert emulator.writes[identity_id] == 0


@pytest.mark.anyio
async def test_v013_add_below_null_metadata_is_400(clock: MutableClock) -> None:
    """Kratos v0.13 cannot add below a null metadata_admin, but can replace it whole."""
    emulator = OryEmulator(clock=clock, kratos_version="v0.13.0")
    identity_id = emulator.kratos.add_identity()["id"]

    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://o") as client:
        nested = await patch(
            client, identity_id, {"op": "add", "path": "/metadata_admin/x", "value": 1}
        )
        whole = await patch(
            client, identity_id, {"op": "add", "path": "/metadata_admin", "value": {"x": 1}}
        )

    assert nested.status_code == 400
    assert whole.status_code == 200
    assert whole.json()["metadata_admin"] == {"x": 1}


def test_emulator_rejects_unknown_version_format() -> None:
    """A kratos_version that is not a release number raises ValueError."""
    with pytest.raises(ValueError, match=r"v26\.2\.0"):
        OryEmulator(kratos_version="latest")


@pytest.mark.anyio
async def test_put_clears_omitted_metadata_and_external_id(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """PUT without metadata_admin, metadata_public or external_id sets them to null."""
    identity_id = emulator.kratos.add_identity(
        metadata_admin={"a": 1}, metadata_public={"b": 2}, external_id="ext-1"
    )["id"]

    response = await client.put(f"/admin/identities/{identity_id}", json={"traits": {"x": 1}})

    body = response.json()
    assert response.status_code == 200
    assert body["metadata_admin"] is None
    assert body["metadata_public"] is None
    assert "external_id" not in body
    assert body["traits"] == {"x": 1}
    assert body["schema_id"] == "default"
    assert emulator.writes[identity_id] == 1


@pytest.mark.anyio
async def test_put_without_traits_is_400(client: httpx.AsyncClient, emulator: OryEmulator) -> None:
    """PUT without traits fails schema validation."""
    identity_id = emulator.kratos.add_identity()["id"]

    response = await client.put(f"/admin/identities/{identity_id}", json={})

    assert response.status_code == 400


@pytest.mark.anyio
async def test_create_identity_answers_201(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """POST creates an identity and omits metadata_admin when it was not sent."""
    response = await client.post(
        "/admin/identities", json={"schema_id": "default", "traits": {"email": "n@example.com"}}
    )

    assert response.status_code == 201
    assert "metadata_admin" not in response.json()
    assert emulator.kratos.identity_json(response.json()["id"])["metadata_admin"] is None


@pytest.mark.anyio
async def test_create_identity_conflicting_external_id_is_409(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """A second identity with the same external_id is a 409."""
    emulator.kratos.add_identity(external_id="ext-1")

    response = await client.post("/admin/identities", json={"traits": {}, "external_id": "ext-1"})

    assert response.status_code == 409
    assert len(emulator.kratos) == 1


@pytest.mark.anyio
async def test_delete_identity_cascades_sessions(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """DELETE returns 204, then 404, and removes the identity's sessions."""
    identity_id = emulator.kratos.add_identity()["id"]
    emulator.kratos.create_session(identity_id)

    first = await client.delete(f"/admin/identities/{identity_id}")
    second = await client.delete(f"/admin/identities/{identity_id}")

    assert first.status_code == 204
    assert second.status_code == 404
    assert emulator.kratos.session_ids(identity_id) == []
    assert emulator.writes[identity_id] == 1


def test_load_identities_keeps_export_fields(emulator: OryEmulator) -> None:
    """load_identities round-trips an exported identity's fields."""
    identity_id = "f5d1b6a3-a4bb-44f7-9161-f4f877efe9ad"
    exported: dict[str, Any] = {
        "id": identity_id,
        "schema_id": "default",
        "state": "active",
        "state_changed_at": "2021-08-17T12:18:01.690425+02:00",
        "traits": {"email": "foo@bar.com"},
        "metadata_admin": {"role": "admin"},
        "metadata_public": None,
        "created_at": "2021-08-17T12:18:01.690741+02:00",
        "updated_at": "2021-08-17T12:18:01.690741+02:00",
    }

    count = emulator.kratos.load_identities([exported])

    rendered = emulator.kratos.identity_json(identity_id)
    assert count == 1
    assert rendered["state_changed_at"] == exported["state_changed_at"]
    assert rendered["created_at"] == exported["created_at"]
    assert rendered["metadata_admin"] == {"role": "admin"}


def test_add_identity_rejects_duplicate_id(emulator: OryEmulator) -> None:
    """Adding an id twice raises ValueError."""
    identity_id = emulator.kratos.add_identity()["id"]

    with pytest.raises(ValueError, match="already exists"):
        emulator.kratos.add_identity(id=identity_id)


def test_seed_makes_ids_repeatable() -> None:
    """Two emulators with the same seed create the same ids."""
    first = OryEmulator(seed=3).kratos.add_identity()["id"]
    second = OryEmulator(seed=3).kratos.add_identity()["id"]
    other = OryEmulator(seed=4).kratos.add_identity()["id"]

    assert first == second
    assert first != other


def test_naive_clock_value_is_rejected() -> None:
    """A clock that returns a naive datetime raises ValueError on use."""
    emulator = OryEmulator(clock=lambda: datetime(2026, 1, 1))  # noqa: DTZ001

    with pytest.raises(ValueError, match="timezone-aware"):
        emulator.kratos.add_identity()


@pytest.mark.anyio
async def test_unprefixed_path_served_on_v26(
    client: httpx.AsyncClient, emulator: OryEmulator
) -> None:
    """Kratos v26.2 serves /identities as /admin/identities, Link path included."""
    identity_id = emulator.kratos.add_identity()["id"]

    listed = await client.get("/identities", params={"page_size": 1})
    fetched = await client.get(f"/identities/{identity_id}")

    assert listed.status_code == 200
    assert listed.headers["link"].startswith("</admin/identities?")
    assert fetched.json()["id"] == identity_id
    assert emulator.requests["get_identity"] == 1


@pytest.mark.anyio
async def test_unprefixed_path_redirects_before_v26(clock: MutableClock) -> None:
    """Kratos v1.0 to v25.4 redirect /identities to /admin/identities with 307."""
    emulator = OryEmulator(clock=clock, kratos_version="v25.4.0")

    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://o") as client:
        response = await client.get("/identities", params={"page_size": 1})

    assert response.status_code == 307
    assert response.headers["location"] == "/admin/identities?page_size=1"
    assert emulator.requests["list_identities"] == 0


@pytest.mark.anyio
async def test_v013_list_uses_offset_tokens(clock: MutableClock) -> None:
    """Kratos before v1.1 pages by offset with absolute links and X-Total-Count."""
    emulator = OryEmulator(clock=clock, kratos_version="v0.13.0")
    ids = seed_identities(emulator, 5)

    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://o") as client:
        first = await client.get("/admin/identities", params={"page_size": 2})
        next_url = parse_links(first.headers["link"])["next"]
        second = await client.get(next_url)
        invalid = await client.get("/admin/identities", params={"page_token": "bm9wZQ"})

    assert [identity["id"] for identity in first.json()] == ids[:2]
    assert first.headers["x-total-count"] == "5"
    assert next_url == (
        "http://127.0.0.1:4433/identities?page=1&page_size=2"
        "&page_token=eyJvZmZzZXQiOiIyIiwidiI6Mn0&per_page=2"
    )
    assert [identity["id"] for identity in second.json()] == ids[2:4]
    assert invalid.status_code == 400
    assert invalid.json()["error"]["reason"] == (
        "The page token is invalid, do not craft your own page tokens"
    )
