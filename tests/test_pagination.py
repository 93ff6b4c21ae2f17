"""Link header parsing and the rules for following rel="next" links."""

from __future__ import annotations

import httpx
import pytest

from stale_tokens import PaginationError
from stale_tokens._pagination import Link, NextLinkFollower, parse_link_header


def link(url: str, *rels: str) -> Link:
    return Link(url=url, rels=frozenset(rels))


def link_headers(value: str) -> httpx.Headers:
    return httpx.Headers({"Link": value})


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", []),
        ('</a?x=1>; rel="next"', [link("/a?x=1", "next")]),
        ("</a>; rel=next", [link("/a", "next")]),
        ('</a>;rel="first",</b>;rel="next"', [link("/a", "first"), link("/b", "next")]),
        (
            '  < /a >  ;  rel = "first" ,\n\t</b> ; rel="next"  ',
            [link("/a", "first"), link("/b", "next")],
        ),
        ('</a?ids=1,2,3>; rel="next"', [link("/a?ids=1,2,3", "next")]),
        ('</a>; rel="next last"', [link("/a", "next", "last")]),
        ('</a>; REL="Next"', [link("/a", "next")]),
        ('</a>; title="x, y; z"; rel="next"', [link("/a", "next")]),
        ('</a>; title="say \\"hi\\", rel=next"; rel="prev"', [link("/a", "prev")]),
        ("</a>; crossorigin; rel=next", [link("/a", "next")]),
        ("</a>", [link("/a")]),
        ("garbage, </a>; rel=next", [link("/a", "next")]),
        ("</a; rel=next", []),
    ],
)
def test_parse_link_header_cases(header: str, expected: list[Link]) -> None:
    """Commas in URLs or quotes, whitespace, bare or quoted and multiple rels all parse."""
    assert parse_link_header(header) == expected


def test_next_link_follower_joins_headers() -> None:
    """A next link in a second Link header line is found."""
    follower = NextLinkFollower(
        httpx.URL("http://127.0.0.1:4434"), service="kratos", operation="list identities"
    )
    headers = httpx.Headers(
        [
            ("Link", '</admin/identities?page_token=a>; rel="first"'),
            ("Link", '</admin/identities?page_token=b>; rel="next"'),
        ]
    )

    assert follower.next_url(headers) == httpx.URL(
        "http://127.0.0.1:4434/admin/identities?page_token=b"
    )


def test_next_link_follower_keeps_path_prefix() -> None:
    """A relative link resolves under the base URL's path prefix, added once."""
    follower = NextLinkFollower(
        httpx.URL("http://127.0.0.1:8080/kratos/"), service="kratos", operation="list identities"
    )

    first = follower.next_url(link_headers('</admin/identities?page_token=a>; rel="next"'))
    second = follower.next_url(link_headers('</kratos/admin/identities?page_token=b>; rel="next"'))

    assert first == httpx.URL("http://127.0.0.1:8080/kratos/admin/identities?page_token=a")
    assert second == httpx.URL("http://127.0.0.1:8080/kratos/admin/identities?page_token=b")


def test_next_link_follower_returns_none_without_next() -> None:
    """Only rel="next" counts; first, prev and last are ignored."""
    follower = NextLinkFollower(
        httpx.URL("http://127.0.0.1:4434"), service="kratos", operation="list identities"
    )

    header = '</a?page=0>; rel="first",</a?page=0>; rel="prev",</a?page=9>; rel="last"'

    assert follower.next_url(link_headers(header)) is None


def test_next_link_follower_rejects_first_url_again() -> None:
    """A next link back to the first page raises PaginationError."""
    base = httpx.URL("http://127.0.0.1:4434")
    follower = NextLinkFollower(base, service="kratos", operation="list identities")
    follower.start(base.copy_with(path="/admin/identities", query=b"page_size=250"))

    with pytest.raises(PaginationError) as caught:
        follower.next_url(link_headers('</admin/identities?page_size=250>; rel="next"'))

    assert caught.value.operation == "list identities"
    assert caught.value.service == "kratos"


@pytest.mark.parametrize(
    "target",
    [
        "https://127.0.0.1:4434/admin/identities",
        "http://127.0.0.1:4435/admin/identities",
        "http://kratos.internal:4434/admin/identities",
        "//127.0.0.9/admin/identities",
    ],
)
def test_next_link_follower_rejects_other_origin(target: str) -> None:
    """A next link to another scheme, port or host raises PaginationError."""
    follower = NextLinkFollower(
        httpx.URL("http://127.0.0.1:4434"), service="kratos", operation="list identities"
    )

    with pytest.raises(PaginationError, match="base URL"):
        follower.next_url(link_headers(f'<{target}>; rel="next"'))


def test_next_link_follower_rejects_invalid_url() -> None:
    """A next link that is not a URL raises PaginationError."""
    follower = NextLinkFollower(
        httpx.URL("http://127.0.0.1:4434"), service="kratos", operation="list identities"
    )

    with pytest.raises(PaginationError, match="not a valid URL"):
        follower.next_url(link_headers('<http://[::1>; rel="next"'))
