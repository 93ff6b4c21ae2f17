"""Link header parsing and safe following of ``rel="next"`` links.

Kratos paginates in three styles, and a client must follow all of them the
same way, by the ``next`` link alone:

- Kratos v0.11 - v1.0: offset tokens (base64 of ``{"offset":"250","v":2}``),
  absolute link URLs carrying ``page``, ``per_page``, ``page_size`` and
  ``page_token``, and ``X-Total-Count``.
- Kratos v1.1 and newer: keyset tokens (the last identity's id), relative link
  URLs, no ``X-Total-Count``.
- Session listings of every version: offset tokens as in the first style.

A full page may be the last one, and Kratos v25.4+ silently clamps
``page_size`` to 500, so a short page is no sign of the end either.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ._errors import PaginationError

__all__ = ["Link", "NextLinkFollower", "parse_link_header"]


@dataclass(frozen=True, slots=True)
class Link:
    """One entry of an RFC 8288 ``Link`` header.

    Attributes:
        url: The target between ``<`` and ``>``, unresolved.
        rels: The ``rel`` values, lower-cased; one link may carry several.
    """

    url: str
    rels: frozenset[str]


def parse_link_header(value: str) -> list[Link]:
    """Parse a ``Link`` header value into its links.

    Commas inside ``<...>`` or inside quoted parameters do not split links,
    ``rel`` may be quoted or bare and may list several space-separated values,
    and parameters other than ``rel`` are skipped. Text that is not a link is
    skipped up to the next ``<``.
    """
    links: list[Link] = []
    position = value.find("<")
    while position != -1:
        end = value.find(">", position + 1)
        if end == -1:
            break
        url = value[position + 1 : end].strip()
        rels, position = _parse_parameters(value, end + 1)
        links.append(Link(url=url, rels=rels))
        position = value.find("<", position)
    return links


def _parse_parameters(value: str, position: int) -> tuple[frozenset[str], int]:
    """Read ``; name=value`` pairs from *position* up to the comma ending the link."""
    rels: frozenset[str] = frozenset()
    length = len(value)
    while position < length:
        character = value[position]
        if character == ",":
            return rels, position + 1
        if character != ";":
            position += 1
            continue

        equals = value.find("=", position)
        boundary = _find_any(value, ";,", position + 1)
        if equals == -1 or equals > boundary:
            position = boundary
            continue
        name = value[position + 1 : equals].strip().lower()
        parameter, position = _parse_parameter_value(value, equals + 1)
        if name == "rel":
            rels = frozenset(parameter.lower().split())
    return rels, position


def _parse_parameter_value(value: str, position: int) -> tuple[str, int]:
    """Read a bare token or a quoted string with backslash escapes."""
    length = len(value)
    while position < length and value[position] in " \t":
        position += 1
    if position >= length or value[position] != '"':
        end = _find_any(value, ";,", position)
        return value[position:end].strip(), end

    characters: list[str] = []
    position += 1
    while position < length and value[position] != '"':
        if value[position] == "\\" and position + 1 < length:
            position += 1
        characters.append(value[position])
        position += 1
    return "".join(characters), position + 1


def _find_any(value: str, characters: str, start: int) -> int:
    """Return the index of the first of *characters* at or after *start*, or ``len(value)``."""
    for index in range(start, len(value)):
        if value[index] in characters:
            return index
    return len(value)


class NextLinkFollower:
    """Resolves ``rel="next"`` links and rejects any that would loop or leave the server.

    One follower serves one listing. It remembers every URL and page token it
    has handed out, which costs one short string per page.

    Args:
        base_url: The API's base URL; relative links resolve against its
            origin, and keep its path prefix when Kratos sits behind a proxy
            that adds one.
        service: ``"kratos"`` or ``"hydra"``, for error messages.
        operation: What is being listed, for error messages.
    """

    def __init__(self, base_url: httpx.URL, *, service: str, operation: str) -> None:
        self._base_url = base_url
        self._path_prefix = _raw_path(base_url).rstrip("/")
        self._service = service
        self._operation = operation
        self._seen_urls: set[str] = set()
        self._seen_tokens: set[str] = set()

    def start(self, url: httpx.URL) -> None:
        """Record the first page's URL, so a ``next`` link back to it is caught."""
        self._remember(url)

    def next_url(self, headers: httpx.Headers) -> httpx.URL | None:
        """Return the next page's URL from a page's *headers*, or ``None`` on the last page.

        Raises:
            PaginationError: If the ``next`` link points at another host, is
                not a URL, or repeats a URL or page token already followed.
        """
        header = ",".join(headers.get_list("link"))
        target = next((link.url for link in parse_link_header(header) if "next" in link.rels), None)
        if target is None:
            return None

        url = self._resolve(target)
        self._remember(url)
        return url

    def _resolve(self, target: str) -> httpx.URL:
        try:
            link = httpx.URL(target)
        except httpx.InvalidURL as exc:
            raise self._error(f'the rel="next" link {target!r} is not a valid URL') from exc

        if not link.scheme and not link.host:
            path = _raw_path(link)
            if not path.startswith("/"):
                path = f"/{path}"
            if not path.startswith(f"{self._path_prefix}/"):
                path = f"{self._path_prefix}{path}"
            return self._base_url.copy_with(path=path, query=link.query or None, fragment=None)

        if not link.scheme:
            link = link.copy_with(scheme=self._base_url.scheme)
        if _origin(link) != _origin(self._base_url):
            # Kratos < 1.1 builds absolute links from serve.admin.base_url, which
            # may name another host than the one this client was given.
            raise self._error(
                f'the rel="next" link points at {_origin(link)}, not at the base URL '
                f"{_origin(self._base_url)}; the API key is only sent to the base URL. Set "
                "Kratos's serve.admin.base_url to the address this client uses, or use that "
                "address as base_url"
            )
        return link.copy_with(fragment=None)

    def _remember(self, url: httpx.URL) -> None:
        key = str(url)
        token = url.params.get("page_token")
        if key in self._seen_urls or (token is not None and token in self._seen_tokens):
            raise self._error(
                f'the server sent a rel="next" link to a page already read ({url.path}, '
                f"page_token {token!r}); stopping instead of looping. Upgrade Kratos or "
                "report the listing that repeats"
            )
        self._seen_urls.add(key)
        if token is not None:
            self._seen_tokens.add(token)

    def _error(self, detail: str) -> PaginationError:
        return PaginationError(
            f"Cannot read the next page of {self._operation}: {detail}.",
            service=self._service,
            operation=self._operation,
        )


def _raw_path(url: httpx.URL) -> str:
    """Return the percent-encoded path, so an encoded ``/`` inside an id survives."""
    return url.raw_path.decode("ascii").partition("?")[0]


def _origin(url: httpx.URL) -> str:
    port = "" if url.port is None else f":{url.port}"
    return f"{url.scheme}://{url.host}{port}"
