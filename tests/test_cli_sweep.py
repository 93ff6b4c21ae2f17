"""`stale-tokens sweep` against the emulator served on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from cli_helpers import BASE_URL, add_inactive_identity, run_cli, run_on, served_emulator
from stale_tokens import HydraAdmin, KratosAdmin, RateLimits
from stale_tokens.cli import _common
from stale_tokens.cli._lock import FileSweepLock
from stale_tokens.testing import Fault, OryEmulator

API_KEY = "ory_pat_cli-test-secret-4f1c9a"


def test_sweep_revokes_inactive_identity() -> None:
    """A sweep deletes the sessions of an identity past 90 days and exits with 0."""
    with served_emulator() as (emulator, base_url):
        stale = add_inactive_identity(emulator, days_inactive=200)
        fresh = add_inactive_identity(emulator, days_inactive=3)

        result = run_cli("sweep", "--kratos-url", base_url, "--json", "--no-progress")

    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["identities_seen"] == 2
    assert report["done"] == {"revoke": 1}
    assert report["failures"] == []
    assert emulator.requests["delete_sessions"] == 1
    assert emulator.writes[stale] > 0
    assert emulator.writes[fresh] == 0
    assert emulator.kratos.identity_json(stale)["metadata_admin"]["stale_tokens"]


def test_sweep_reads_urls_from_environment() -> None:
    """KRATOS_ADMIN_URL and HYDRA_ADMIN_URL stand in for the flags, and Hydra is called."""
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)

    result = run_on(
        emulator,
        "sweep",
        "--json",
        environ={"KRATOS_ADMIN_URL": BASE_URL, "HYDRA_ADMIN_URL": BASE_URL},
    )

    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["done"] == {"revoke": 1}
    assert emulator.requests["list_identities"] == 1
    assert emulator.requests["revoke_consent_sessions"] == 1


def test_sweep_dry_run_writes_nothing() -> None:
    """A dry run reports the revocation it would do and leaves the write counters at zero."""
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)
    add_inactive_identity(emulator, days_inactive=120, role="admin")
    emulator.reset_counters()

    result = run_on(
        emulator, "sweep", "--kratos-url", BASE_URL, "--hydra-url", BASE_URL, "--dry-run", "--json"
    )

    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert report["done"] == {"revoke": 2}
    assert sum(emulator.writes.values()) == 0
    assert emulator.requests["patch_identity"] == 0
    assert emulator.requests["delete_sessions"] == 0
    assert emulator.requests["revoke_consent_sessions"] == 0


def test_sweep_summary_is_plain_text() -> None:
    """Without --json the report is a short text summary naming the counts."""
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)

    result = run_on(emulator, "sweep", "--kratos-url", BASE_URL, "--dry-run")

    assert result.code == 0, result.stderr
    assert "dry run: nothing was written" in result.stdout
    assert "identities: 1 in" in result.stdout
    assert "  would do:   revoke 1" in result.stdout


def test_sweep_exits_1_when_identity_fails() -> None:
    """A failing session deletion is reported per identity and gives exit status 1."""
    emulator = OryEmulator()
    failing = add_inactive_identity(emulator, days_inactive=200)
    emulator.add_fault(Fault("delete_sessions", status=500))

    result = run_on(emulator, "sweep", "--kratos-url", BASE_URL, "--max-attempts", "1")

    assert result.code == 1
    assert f"failed {failing} (revoke)" in result.stdout
    assert "failed: 1" in result.stdout
    assert emulator.requests["delete_sessions"] == 1


def test_sweep_circuit_breaker_exits_2() -> None:
    """A plan beyond --max-destructive-count acts on nothing and exits with status 2."""
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)
    add_inactive_identity(emulator, days_inactive=300)
    emulator.reset_counters()

    result = run_on(
        emulator, "sweep", "--kratos-url", BASE_URL, "--max-destructive-count", "1", "--json"
    )

    assert result.code == 2
    assert json.loads(result.stdout)["aborted"] is True
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("stale-tokens: error: sweep ")
    assert "aborted: circuit breaker" in last_line
    assert "max_destructive_count=1" in last_line
    assert sum(emulator.writes.values()) == 0


def test_sweep_max_destructive_steps_defers_rest() -> None:
    """--max-destructive-steps 1 revokes one identity and defers the other."""
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)
    add_inactive_identity(emulator, days_inactive=300)

    result = run_on(
        emulator, "sweep", "--kratos-url", BASE_URL, "--max-destructive-steps", "1", "--json"
    )

    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["done"] == {"revoke": 1}
    assert len(report["deferred"]) == 1
    assert emulator.requests["delete_sessions"] == 1


def test_sweep_lock_held_exits_2(tmp_path: Path) -> None:
    """When another process holds --lock-file, the sweep lists nothing and exits with 2."""
    lock_path = tmp_path / "sweep.lock"
    holder = FileSweepLock(str(lock_path))
    assert anyio.run(holder.acquire, "other-run")
    try:
        emulator = OryEmulator()
        add_inactive_identity(emulator, days_inactive=200)

        result = run_on(emulator, "sweep", "--kratos-url", BASE_URL, "--lock-file", str(lock_path))
    finally:
        anyio.run(holder.release, "other-run")

    assert result.code == 2
    assert "the sweep lock is held by another run" in result.stderr
    assert emulator.requests["list_identities"] == 0


def test_sweep_lock_free_is_taken_and_released(tmp_path: Path) -> None:
    """A free --lock-file is taken for the run and free again afterwards."""
    lock_path = tmp_path / "sweep.lock"
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)

    result = run_on(emulator, "sweep", "--kratos-url", BASE_URL, "--lock-file", str(lock_path))

    assert result.code == 0, result.stderr
    assert emulator.requests["delete_sessions"] == 1
    assert anyio.run(FileSweepLock(str(lock_path)).acquire, "next-run")


def test_sweep_sends_api_key_from_environment(caplog: pytest.LogCaptureFixture) -> None:
    """ORY_API_KEY reaches the server as a bearer token and appears in no output or log."""
    caplog.set_level(logging.DEBUG, logger="stale_tokens")
    with served_emulator(api_key=API_KEY) as (emulator, base_url):
        add_inactive_identity(emulator, days_inactive=200)

        result = run_cli(
            "sweep",
            "--kratos-url",
            base_url,
            "--hydra-url",
            base_url,
            "-v",
            environ={"ORY_API_KEY": API_KEY},
        )

    assert result.code == 0, result.stderr
    assert emulator.requests["delete_sessions"] == 1
    assert emulator.requests["revoke_consent_sessions"] == 1
    assert API_KEY not in result.stdout
    assert API_KEY not in result.stderr
    assert API_KEY not in caplog.text


def test_sweep_wrong_api_key_names_variable(caplog: pytest.LogCaptureFixture) -> None:
    """A rejected key ends with one line naming ORY_API_KEY, without the key or a traceback."""
    wrong_key = "ory_pat_wrong-key-77aa"
    caplog.set_level(logging.DEBUG, logger="stale_tokens")
    with served_emulator(api_key=API_KEY) as (emulator, base_url):
        result = run_cli("sweep", "--kratos-url", base_url, environ={"ORY_API_KEY": wrong_key})

    assert result.code == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("stale-tokens: error: kratos list identities failed")
    assert "401" in last_line
    assert "check ORY_API_KEY" in last_line
    assert "Traceback" not in result.stderr
    assert wrong_key not in result.stderr + result.stdout + caplog.text
    assert emulator.requests["list_identities"] == 1


def test_sweep_debug_shows_traceback_without_key() -> None:
    """--debug adds the traceback, and the key still does not appear."""
    wrong_key = "ory_pat_wrong-key-77aa"
    emulator = OryEmulator(api_key=API_KEY)
    result = run_on(
        emulator, "sweep", "--kratos-url", BASE_URL, "--debug", environ={"ORY_API_KEY": wrong_key}
    )

    assert result.code == 1
    assert "Traceback" in result.stderr
    assert "UnauthorizedError" in result.stderr
    assert wrong_key not in result.stderr


def test_sweep_unreachable_kratos_is_one_line() -> None:
    """A refused connection ends with one line that names the URL option, and status 1."""
    result = run_cli("sweep", "-q", "--kratos-url", "http://127.0.0.1:1", "--max-attempts", "1")

    assert result.code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("stale-tokens: error: Could not reach kratos")
    assert "'http://127.0.0.1:1', from --kratos-url or KRATOS_ADMIN_URL." in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep"], "no Kratos admin URL: pass --kratos-url or set KRATOS_ADMIN_URL"),
        (["sweep", "--kratos-url", "ftp://127.0.0.1"], "is not an absolute http:// or https://"),
        (
            ["sweep", "--kratos-url", "http://127.0.0.1:1", "--max-destructive-fraction", "2"],
            "--max-destructive-fraction must be above 0 and at most 1",
        ),
        (
            ["sweep", "--kratos-url", "http://127.0.0.1:1", "--notifier", "nomodule"],
            "is not of the form package.module:attribute",
        ),
        (
            ["sweep", "--kratos-url", "http://127.0.0.1:1", "--audit-sink", "json:dumps"],
            "calling dumps without arguments failed",
        ),
        (
            ["sweep", "--kratos-url", "http://127.0.0.1:1", "--audit-sink", "json:JSONDecoder"],
            "names JSONDecoder, which has no emit() method",
        ),
    ],
)
def test_sweep_usage_error_exits_2(argv: list[str], message: str) -> None:
    """Invalid options end with exit status 2 and one line naming the value."""
    result = run_cli(*argv)

    assert result.code == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["sweep", "--max-destructive-count", "lots"],
            "argument --max-destructive-count: 'lots' is not a whole number",
        ),
        (
            ["sweep", "--concurrency", "0"],
            "argument --concurrency: '0' is below 1; pass an integer of at least 1",
        ),
        (["sweep", "--page-size", "x"], "argument --page-size: 'x' is not a whole number"),
        (["sweep", "--max-destructive-fraction", "half"], "'half' is not a number"),
        (["sweep", "--unknown-option"], "unrecognized arguments: --unknown-option"),
    ],
)
def test_sweep_argparse_error_exits_2(argv: list[str], message: str) -> None:
    """A malformed option is rejected by the parser with status 2 and a usage line."""
    result = run_cli(*argv)

    last_line = result.stderr.splitlines()[-1]
    assert result.code == 2
    assert result.stderr.startswith("usage: stale-tokens")
    assert last_line.startswith("stale-tokens")
    assert message in last_line
    assert result.stdout == ""


def test_sweep_bad_policy_shows_policy_message(tmp_path: Path) -> None:
    """An invalid policy file ends with the policy's own message and status 2."""
    policy = tmp_path / "policy.toml"
    policy.write_text("[roles.user]\nrevoke_after_days = -3\n")

    result = run_cli("sweep", "--kratos-url", "http://127.0.0.1:1", "--policy", str(policy))

    assert result.code == 2
    assert result.stderr.startswith("stale-tokens: error: invalid policy: ")
    assert "revoke_after_days" in result.stderr
    assert "-3" in result.stderr


def test_sweep_url_password_is_redacted() -> None:
    """A password in --kratos-url is replaced by *** in the error message."""
    result = run_cli("sweep", "--kratos-url", "ftp://admin:hunter2@127.0.0.1:4434")

    assert result.code == 2
    assert "hunter2" not in result.stderr
    assert "ftp://***@127.0.0.1:4434" in result.stderr


def test_sweep_uses_policy_file(tmp_path: Path) -> None:
    """A policy that revokes users after 30 days acts on an identity 40 days inactive."""
    policy = tmp_path / "policy.toml"
    policy.write_text('name = "strict"\n[roles.user]\nrevoke_after_days = 30\n')
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=40)

    result = run_on(emulator, "sweep", "--kratos-url", BASE_URL, "--policy", str(policy), "--json")

    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["policy_name"] == "strict"
    assert report["done"] == {"revoke": 1}
    assert emulator.requests["delete_sessions"] == 1


def test_sweep_loads_notifier_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--notifier MODULE:NAME imports a factory and the sweep sends the warning through it."""
    (tmp_path / "cli_test_notifier.py").write_text(
        "SENT = []\n"
        "class Notifier:\n"
        "    async def notify(self, notification):\n"
        "        SENT.append((notification.step, notification.identity_id))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    policy = tmp_path / "policy.toml"
    policy.write_text("[roles.user]\nrevoke_after_days = 90\nwarn_before_days = 10\n")
    emulator = OryEmulator()
    warned = add_inactive_identity(emulator, days_inactive=85)

    result = run_on(
        emulator,
        "sweep",
        "--kratos-url",
        BASE_URL,
        "--policy",
        str(policy),
        "--notifier",
        "cli_test_notifier:Notifier",
    )

    import cli_test_notifier  # type: ignore[import-not-found]  # noqa: PLC0415

    assert result.code == 0, result.stderr
    assert [("warn", warned)] == cli_test_notifier.SENT
    assert emulator.requests["delete_sessions"] == 0


def test_sweep_logs_progress_lines_when_not_terminal() -> None:
    """Off a terminal, progress ends in plain log lines saying Kratos sends no total."""
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)

    result = run_on(emulator, "sweep", "--kratos-url", BASE_URL)

    assert result.code == 0, result.stderr
    assert "INFO stale_tokens.cli: listing: 1 identities" in result.stderr
    assert "total unknown: Kratos sends no identity count" in result.stderr
    assert "INFO stale_tokens.cli: acting: 1 of about 1 due identities" in result.stderr
    assert "\r" not in result.stderr


def test_sweep_quiet_hides_info_records() -> None:
    """-q leaves only warnings and errors on stderr."""
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)

    result = run_on(emulator, "sweep", "-q", "--kratos-url", BASE_URL)

    assert result.code == 0
    assert result.stderr == ""
    assert emulator.requests["delete_sessions"] == 1


def test_sweep_passes_client_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connection options and the Ory Network plan reach both clients, the key from ORY_API_KEY."""
    created: dict[str, dict[str, Any]] = {}

    def recorder(name: str, client: type[Any]) -> Callable[..., Any]:
        def build(base_url: str, **options: Any) -> Any:
            created[name] = {"base_url": base_url, **options}
            return client(base_url, **options)

        return build

    monkeypatch.setattr(_common, "KratosAdmin", recorder("kratos", KratosAdmin))
    monkeypatch.setattr(_common, "HydraAdmin", recorder("hydra", HydraAdmin))
    emulator = OryEmulator()

    result = run_on(
        emulator,
        "sweep",
        "--kratos-url",
        BASE_URL,
        "--hydra-url",
        BASE_URL,
        "--ory-network-plan",
        "growth",
        "--max-attempts",
        "2",
        "--read-timeout",
        "3.5",
        "--page-size",
        "100",
        environ={"ORY_API_KEY": API_KEY},
    )

    assert result.code == 0, result.stderr
    assert created["kratos"]["rate_limits"] == RateLimits.ory_network("growth")
    assert created["hydra"]["rate_limits"] == RateLimits.ory_network("growth")
    assert created["kratos"]["api_key"] == API_KEY
    assert created["hydra"]["api_key"] == API_KEY
    assert created["kratos"]["max_attempts"] == 2
    assert created["kratos"]["read_timeout"] == 3.5
    assert created["kratos"]["page_size"] == 100
    assert emulator.requests["list_identities"] == 1


def test_sweep_unknown_plan_exits_2() -> None:
    """An unknown --ory-network-plan is a usage error listing the plans."""
    result = run_cli("sweep", "--ory-network-plan", "platinum")

    assert result.code == 2
    assert "invalid choice: 'platinum'" in result.stderr
    assert "'enterprise'" in result.stderr


def test_sweep_dry_run_log_says_would_act() -> None:
    """The dry run's log lines state that it writes nothing and list counts as step=count."""
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)

    result = run_on(emulator, "sweep", "--kratos-url", BASE_URL, "--dry-run", "--no-progress")

    assert result.code == 0, result.stderr
    assert "(policy default, dry run: nothing will be written)" in result.stderr
    assert "1 identities, would act revoke=1, 0 skipped" in result.stderr
    assert "{" not in result.stderr
    assert emulator.requests["delete_sessions"] == 0


def test_sweep_log_says_done() -> None:
    """A real run's last log line lists what it did as step=count."""
    emulator = OryEmulator()
    add_inactive_identity(emulator, days_inactive=200)

    result = run_on(emulator, "sweep", "--kratos-url", BASE_URL, "--no-progress")

    assert result.code == 0, result.stderr
    assert "1 identities, done revoke=1, 0 skipped" in result.stderr
    assert emulator.requests["delete_sessions"] == 1


def test_sweep_imports_plugin_from_app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--app-dir, the current directory by default, is searched first for plug-in modules."""
    (tmp_path / "ops_plugins_cwd.py").write_text(
        "class Notifier:\n    async def notify(self, *args, **kwargs):\n        pass\n\n"
        "notifier = Notifier()\n"
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "ops_plugins_cwd", raising=False)
    monkeypatch.chdir(tmp_path)
    emulator = OryEmulator()

    result = run_on(
        emulator, "sweep", "--kratos-url", BASE_URL, "--notifier", "ops_plugins_cwd:notifier"
    )

    assert result.code == 0, result.stderr
    assert sys.path[0] == str(tmp_path)
    assert emulator.requests["list_identities"] == 1
    monkeypatch.delitem(sys.modules, "ops_plugins_cwd", raising=False)


def test_sweep_missing_plugin_names_app_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module found neither installed nor in --app-dir is reported with that directory."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    emulator = OryEmulator()

    result = run_on(
        emulator,
        "sweep",
        "--kratos-url",
        BASE_URL,
        "--app-dir",
        str(tmp_path),
        "--notifier",
        "no_such_ops_module:notifier",
    )

    assert result.code == 2
    assert f"sits in --app-dir ({tmp_path})" in result.stderr
    assert emulator.requests["list_identities"] == 0


@pytest.mark.parametrize(
    ("option", "url", "expected"),
    [
        (
            "--kratos-url",
            "127.0.0.1:46295",
            (
                "the admin URL '127.0.0.1:46295' from --kratos-url or KRATOS_ADMIN_URL is not an "
                "absolute http:// or https:// URL; pass one such as 'http://127.0.0.1:46295'"
            ),
        ),
        (
            "--hydra-url",
            "ftp://127.0.0.1/x",
            (
                "the admin URL 'ftp://127.0.0.1/x' from --hydra-url or HYDRA_ADMIN_URL is not an "
                "absolute http:// or https:// URL; pass one such as 'http://127.0.0.1:4445'"
            ),
        ),
    ],
)
def test_sweep_url_without_scheme_names_option(option: str, url: str, expected: str) -> None:
    """An admin URL without http:// names the option, the variable and a corrected URL."""
    emulator = OryEmulator()
    argv = ["sweep", "--kratos-url", BASE_URL, option, url]

    result = run_on(emulator, *argv)

    assert result.code == 2
    assert result.stderr == f"stale-tokens: error: {expected}\n"
    assert sum(emulator.requests.values()) == 0


def test_sweep_breaker_message_uses_cli_spelling() -> None:
    """A rejected breaker limit names the option and spells 'none' as the CLI does."""
    result = run_cli("sweep", "--kratos-url", BASE_URL, "--max-destructive-fraction", "5")

    assert result.code == 2
    assert result.stderr == (
        "stale-tokens: error: invalid circuit breaker option: --max-destructive-fraction must "
        "be above 0 and at most 1, got 5.0; pass 0.1 for 10 % or 'none' to disable the check\n"
    )


def test_sweep_mysql_url_names_supported_drivers() -> None:
    """A MySQL URL without its driver names the URLs the extras install drivers for."""
    emulator = OryEmulator()

    result = run_on(
        emulator,
        "sweep",
        "--kratos-url",
        BASE_URL,
        "--audit-database-url",
        "mysql://sweeper:s3cret-pw@127.0.0.1/app",
    )

    assert result.code == 2
    assert "s3cret-pw" not in result.stderr
    assert "'mysql://***@127.0.0.1/app' needs the 'MySQLdb' package" in result.stderr
    assert "'stale-tokens[sql]' installs the driver of sqlite:// URLs" in result.stderr
    assert "'stale-tokens[postgres]' that of postgresql:// URLs" in result.stderr
    assert emulator.requests["list_identities"] == 0
