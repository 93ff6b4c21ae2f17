"""Show the whole job on loopback: track activity, plan, sweep, and prove what changed.

``make demo`` runs this script. It seeds the Ory emulator with a realistic
population and serves it with uvicorn, then starts the example FastAPI app
under uvicorn in a child process. It sends real HTTP traffic as some users
and waits for the activity flush. Then it runs a dry run and a real sweep,
and checks the result through Kratos whoami and Hydra introspection. Everything listens on
127.0.0.1 only, and every process it starts is stopped when it ends, also on
Ctrl-C.

    python examples/demo/run_demo.py [--identities 2400] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TypeVar

import anyio
import anyio.abc
import httpx
from population import Member, Population, seed_population
from reporting import (
    MailBox,
    audit_rows,
    count_audit_rows,
    open_audit,
    print_audit,
    print_groups,
    print_mail,
    print_report,
    serve_mail,
)

from stale_tokens import (
    HydraAdmin,
    KratosAdmin,
    Policy,
    SweepAbortedError,
    SweepReport,
    parse_timestamp,
    sweep,
)
from stale_tokens.integrations.smtp import SmtpNotifier
from stale_tokens.integrations.sql import SqlAuditSink
from stale_tokens.testing import SESSION_COOKIE, OryEmulator

T = TypeVar("T")

EXAMPLES = Path(__file__).resolve().parents[1]
POLICY_FILE = EXAMPLES / "fastapi_app" / "policy.toml"
LOOPBACK = "127.0.0.1"
# Only printed in the emails; the Kratos self-service UI's usual address.
SIGN_IN_URL = "http://127.0.0.1:4455/login"
DEFAULT_IDENTITIES = 2400
APP_START_TIMEOUT = 20.0
APP_STOP_TIMEOUT = 8.0
FLUSH_TIMEOUT = 20.0
REQUESTS_PER_USER = 2
CONCURRENCY = 32
EXIT_INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class Ory:
    """The served emulator and the clients the demo uses on it."""

    emulator: OryEmulator
    url: str
    api_key: str
    http: httpx.AsyncClient


@dataclass(frozen=True, slots=True)
class RunningApp:
    """The example app's child process."""

    url: str
    pid: int
    http: httpx.AsyncClient


@dataclass(frozen=True, slots=True)
class Sweeper:
    """The clients, plug-ins and policy that every sweep of the demo uses."""

    kratos: KratosAdmin
    hydra: HydraAdmin
    notifier: SmtpNotifier
    audit: SqlAuditSink
    policy: Policy

    async def run(self, *, dry_run: bool = False) -> SweepReport:
        """Run one sweep and return its report."""
        return await sweep(
            kratos=self.kratos,
            hydra=self.hydra,
            policy=self.policy,
            notifier=self.notifier,
            audit=self.audit,
            dry_run=dry_run,
        )


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--identities",
        type=int,
        default=DEFAULT_IDENTITIES,
        help="about how many identities to seed, at least 100 (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="seed for the population (default: %(default)s)"
    )
    arguments = parser.parse_args(argv)
    if arguments.identities < 100:
        parser.error(f"--identities must be at least 100, got {arguments.identities}")
    return arguments


async def run(arguments: argparse.Namespace) -> int:
    """Run the demo; return the exit status."""
    started = time.monotonic()
    api_key = f"demo_{secrets.token_urlsafe(16)}"
    emulator = OryEmulator(seed=arguments.seed, api_key=api_key)
    population = seed_population(emulator, size=arguments.identities, seed=arguments.seed)
    sessions = sum(member.session is not None for member in population.members)
    consents = sum(member.consent is not None for member in population.members)
    print(
        f"Seeded {len(population):,} identities in Kratos's JSON shape, with {sessions:,} "
        f"Kratos sessions and {consents:,} OAuth2 consents."
    )

    with anyio.CancelScope() as scope:
        async with (
            emulator.serve(LOOPBACK, 0) as ory_url,
            httpx.AsyncClient(base_url=ory_url, timeout=10.0) as ory_http,
        ):
            ory = Ory(emulator=emulator, url=ory_url, api_key=api_key, http=ory_http)
            await _wait_until_serving(ory)
            # Installed after uvicorn's own handlers, so Ctrl-C stops the demo
            # in order instead of only the emulator's server.
            _cancel_on_signals(scope)
            print(f"Ory emulator (Kratos public and admin, Hydra admin): {ory_url}")

            async with start_app(ory) as app:
                print(f"Example app (uvicorn, pid {app.pid}): {app.url}", flush=True)
                await demonstrate(ory, app, population)

    if scope.cancelled_caught:
        print("\nInterrupted: stopped the example app and the emulator.")
        return EXIT_INTERRUPTED
    print(
        f"\nStopped the example app and the emulator. Demo finished in "
        f"{time.monotonic() - started:.1f} s."
    )
    return 0


async def demonstrate(ory: Ory, app: RunningApp, population: Population) -> None:
    """Send traffic, wait for the flush, plan, sweep and check the outcome."""
    travellers = [m for m in population.members if m.group.sends_traffic]
    print("\n1. Traffic and activity tracking")
    traffic_started = time.time()
    await send_traffic(app, travellers)
    await wait_for_flush(ory, app, travellers, since=traffic_started)

    revocable = population.where(expected_prefix="sessions and OAuth2")
    revocable += population.where(expected_prefix="revoked")
    sessions_before = await whoami_statuses(ory, [m for m in revocable if m.session])

    with tempfile.TemporaryDirectory(prefix="stale-tokens-demo-") as directory:
        # SQLite lets one writer in at a time; the sweep's concurrent audit
        # inserts wait for the lock up to this many seconds instead of 5.
        audit_url = f"sqlite:///{Path(directory) / 'audit.db'}?timeout=60"
        async with (
            serve_mail(LOOPBACK) as (mailbox, smtp_port),
            open_audit(audit_url) as audit,
            # The sweeps reach the emulator through its in-process transport,
            # which takes a third of the time of HTTP through uvicorn in this
            # one process. The app and every check below use HTTP.
            KratosAdmin(ory.url, api_key=ory.api_key, transport=ory.emulator.transport()) as kratos,
            HydraAdmin(ory.url, api_key=ory.api_key, transport=ory.emulator.transport()) as hydra,
        ):
            notifier = SmtpNotifier(
                sender="Example Security <security@example.org>",
                sign_in_url=SIGN_IN_URL,
                host=LOOPBACK,
                port=smtp_port,
                tls="none",
            )
            sweeper = Sweeper(
                kratos=kratos,
                hydra=hydra,
                notifier=notifier,
                audit=audit,
                policy=Policy.from_toml(POLICY_FILE),
            )
            await plan_and_sweep(ory, sweeper, mailbox, smtp_port, audit_url)

            print("\n4. Proof")
            await prove(ory, app, population, revocable, sessions_before)

            print("\n5. Per group, from the audit table")
            print_groups(population, await audit_rows(audit))

            again = await sweeper.run()
            print(
                f"\n6. A second sweep right after: due {dict(again.due) or 'nothing'}, "
                f"done {dict(again.done) or 'nothing'}, {len(mailbox.messages)} emails in "
                "total: each step happens once per inactivity episode."
            )


async def plan_and_sweep(
    ory: Ory, sweeper: Sweeper, mailbox: MailBox, smtp_port: int, audit_url: str
) -> None:
    """Run the dry run, check it changed nothing, then run the real sweep."""
    print("\n2. Dry run (the sweeps call the emulator in-process; the app and the checks use HTTP)")
    writes_before = sum(ory.emulator.writes.values())
    plan = await sweeper.run(dry_run=True)
    writes = sum(ory.emulator.writes.values()) - writes_before
    print_report(plan)
    print(
        f"   During the dry run: {writes} Kratos writes, {len(mailbox.messages)} emails, "
        f"{await count_audit_rows(sweeper.audit)} audit rows."
    )

    print("\n3. Sweep")
    try:
        report = await sweeper.run()
    except SweepAbortedError as exc:
        print(f"   The sweep was aborted: {exc.report.abort_reason}")
        raise
    print_report(report)
    print_mail(mailbox, smtp_port)
    await print_audit(sweeper.audit, audit_url)


async def send_traffic(app: RunningApp, members: list[Member]) -> None:
    """Send REQUESTS_PER_USER requests as each member, half with the cookie, half with the token."""
    statuses: Counter[int] = Counter()
    paths = ("/me", "/projects", "/me")

    async def browse(numbered: tuple[int, Member]) -> None:
        index, member = numbered
        session = member.session
        if session is None:
            return
        if index % 2:
            headers = {"X-Session-Token": session.token}
        else:
            headers = {"Cookie": f"{SESSION_COOKIE}={session.cookie}"}
        for path in paths[:REQUESTS_PER_USER]:
            response = await app.http.get(path, headers=headers)
            statuses[response.status_code] += 1

    await _for_each(browse, enumerate(members))
    returning = sum(member.group.name == "returning users" for member in members)
    print(
        f"   {len(members)} users ({returning} of them back after 84 to 150 days) sent "
        f"{sum(statuses.values())} requests with a session cookie or X-Session-Token: "
        f"{_counts(statuses)}."
    )


async def wait_for_flush(ory: Ory, app: RunningApp, members: list[Member], *, since: float) -> None:
    """Wait until Kratos has a ``last_activity_at`` at or after *since* for every member.

    Raises:
        TimeoutError: If that takes longer than FLUSH_TIMEOUT seconds.
    """
    started = time.monotonic()
    with anyio.fail_after(FLUSH_TIMEOUT):
        # Kratos sends no notification of a write, so the demo polls.
        while _count_written_since(ory.emulator, members, since) < len(members):  # noqa: ASYNC110
            await anyio.sleep(0.2)
    tracker = (await app.http.get("/healthz")).json()["tracker"]
    print(
        f"   Within {time.monotonic() - started:.1f} s, metadata_admin.last_activity_at of all "
        f"{len(members)} users was from this traffic. The tracker made {tracker['written']} "
        f"writes for {REQUESTS_PER_USER * len(members)} requests; /healthz shows "
        f"{tracker['failed']} failed and {tracker['pending']} pending."
    )


async def prove(
    ory: Ory,
    app: RunningApp,
    population: Population,
    revocable: list[Member],
    sessions_before: Counter[int],
) -> None:
    """Check the sweep's effect through Kratos whoami, the app and Hydra introspection."""
    with_session = [m for m in revocable if m.session]
    after = await whoami_statuses(ory, with_session)
    print(
        f"   Kratos whoami for the {len(with_session)} sessions of revoked users: "
        f"before {_counts(sessions_before)}, after {_counts(after)}."
    )

    if with_session and with_session[0].session is not None:
        cookie = with_session[0].session.cookie
        response = await app.http.get("/me", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
        print(
            f"   The app answers a revoked user's cookie with {response.status_code}: "
            f"{response.json()['detail']!r}."
        )

    with_consent = [m for m in revocable if m.consent]
    tokens = await introspect(ory, with_consent)
    print(
        f"   Hydra introspection of their {len(with_consent)} access and refresh token "
        f"pairs: {_counts(tokens)}."
    )

    oauth2_only = population.of("OAuth2 grant unused")
    print(
        f"   {len(oauth2_only)} users whose OAuth2 grant went unused for 200+ days: tokens "
        f"{_counts(await introspect(ory, oauth2_only))}, browser sessions "
        f"{_counts(await whoami_statuses(ory, oauth2_only))}."
    )

    for label, members in (
        ("warned users", population.where(expected_prefix="warned")),
        ("users who sent traffic", [m for m in population.members if m.group.sends_traffic]),
        ("exempt accounts with a session", population.where(expected_prefix="exempt")),
    ):
        holders = [m for m in members if m.session]
        print(f"   whoami for {label}: {_counts(await whoami_statuses(ory, holders))}.")


async def whoami_statuses(ory: Ory, members: list[Member]) -> Counter[int]:
    """Ask Kratos whoami with each member's session cookie; count the status codes."""
    statuses: Counter[int] = Counter()

    async def ask(member: Member) -> None:
        if member.session is None:
            return
        cookie = f"{SESSION_COOKIE}={member.session.cookie}"
        response = await ory.http.get("/sessions/whoami", headers={"Cookie": cookie})
        statuses[response.status_code] += 1

    await _for_each(ask, members)
    return statuses


async def introspect(ory: Ory, members: list[Member]) -> Counter[str]:
    """Introspect each member's access and refresh token with Hydra; count active and inactive."""
    results: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {ory.api_key}"}

    async def check(token: str) -> None:
        response = await ory.http.post(
            "/admin/oauth2/introspect", data={"token": token}, headers=headers
        )
        results["active" if response.json()["active"] else "inactive"] += 1

    tokens = [
        token
        for member in members
        if member.consent is not None
        for token in (member.consent.access_token, member.consent.refresh_token)
    ]
    await _for_each(check, tokens)
    return results


@asynccontextmanager
async def start_app(ory: Ory) -> AsyncIterator[RunningApp]:
    """Run the example app under uvicorn in a child process on a free loopback port.

    The demo binds the socket and hands it to uvicorn (``--fd``), so the port
    is known before the child starts and nothing else can take it. The child
    gets its own session, so a Ctrl-C in the terminal reaches only the demo,
    which then stops the child in order: SIGTERM, and SIGKILL after
    APP_STOP_TIMEOUT seconds.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK, 0))
    listener.listen(128)
    url = f"http://{LOOPBACK}:{listener.getsockname()[1]}"
    environment = {
        **os.environ,
        "KRATOS_PUBLIC_URL": ory.url,
        "KRATOS_ADMIN_URL": ory.url,
        "HYDRA_ADMIN_URL": ory.url,
        "ORY_API_KEY": ory.api_key,
        "STALE_TOKENS_POLICY_FILE": str(POLICY_FILE),
        # A short flush interval and a large budget, so the demo need not wait a
        # minute. Without a per-identity write window, the final flush on
        # shutdown writes everything still buffered.
        "STALE_TOKENS_FLUSH_INTERVAL": "0.5",
        "STALE_TOKENS_MIN_WRITE_INTERVAL": "0",
        "STALE_TOKENS_MAX_WRITES_PER_MINUTE": "5000",
        # The demo runs the sweeps itself, so it can show the dry run first.
        "STALE_TOKENS_SWEEP_INTERVAL": "0",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "fastapi_app.app:create_app",
        "--app-dir",
        str(EXAMPLES),
        "--fd",
        str(listener.fileno()),
        "--log-level",
        "warning",
    ]
    try:
        process = await anyio.open_process(
            command,
            env=environment,
            pass_fds=(listener.fileno(),),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=None,
            stderr=None,
        )
    finally:
        listener.close()

    try:
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
            app = RunningApp(url=url, pid=process.pid, http=http)
            await _wait_for_health(app, process)
            yield app
    finally:
        with anyio.CancelScope(shield=True):
            await _stop(process)


async def _wait_for_health(app: RunningApp, process: anyio.abc.Process) -> None:
    with anyio.fail_after(APP_START_TIMEOUT):
        while True:
            if process.returncode is not None:
                raise RuntimeError(
                    f"the example app exited with status {process.returncode} before it "
                    "served /healthz; its error is printed above"
                )
            try:
                if (await app.http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await anyio.sleep(0.1)


async def _stop(process: anyio.abc.Process) -> None:
    if process.returncode is None:
        process.terminate()
        with anyio.move_on_after(APP_STOP_TIMEOUT):
            await process.wait()
    if process.returncode is None:
        print(
            f"The example app (pid {process.pid}) did not stop in {APP_STOP_TIMEOUT:g} s; "
            "killing it."
        )
        process.kill()
        await process.wait()
    await process.aclose()


async def _wait_until_serving(ory: Ory) -> None:
    """Wait until uvicorn serves the emulator; its signal handlers are in place by then."""
    headers = {"Authorization": f"Bearer {ory.api_key}"}
    with anyio.fail_after(APP_START_TIMEOUT):
        while True:
            try:
                await ory.http.get("/admin/identities", params={"page_size": 1}, headers=headers)
            except httpx.TransportError:
                await anyio.sleep(0.05)
            else:
                return


def _cancel_on_signals(scope: anyio.CancelScope) -> None:
    loop = asyncio.get_running_loop()

    def cancel(signal_number: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(scope.cancel)

    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, cancel)


async def _for_each(function: Callable[[T], Awaitable[None]], items: Iterable[T]) -> None:
    """Await ``function(item)`` for every item, CONCURRENCY at a time."""
    limiter = anyio.CapacityLimiter(CONCURRENCY)

    async def limited(item: T) -> None:
        async with limiter:
            await function(item)

    async with anyio.create_task_group() as tasks:
        for item in items:
            tasks.start_soon(limited, item)


def _count_written_since(emulator: OryEmulator, members: list[Member], since: float) -> int:
    count = 0
    for member in members:
        metadata_admin = emulator.kratos.identity_json(member.identity_id)["metadata_admin"]
        written = metadata_admin.get("last_activity_at") if metadata_admin else None
        # The stored time has microseconds; *since* may have a finer fraction.
        if written is not None and parse_timestamp(written).timestamp() >= since - 0.001:
            count += 1
    return count


def _counts(counter: Counter[int] | Counter[str]) -> str:
    if not counter:
        return "none"
    return ", ".join(f"{key} for {count}" for key, count in sorted(counter.items()))


def main(argv: list[str] | None = None) -> int:
    """Run the demo from the command line; return the exit status."""
    arguments = parse_arguments(argv)
    try:
        return anyio.run(run, arguments, backend="asyncio")
    except KeyboardInterrupt:
        print("\nInterrupted.")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
