"""The Kubernetes manifest in docs/scheduling.md runs a sweep the CLI accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from stale_tokens import Policy
from stale_tokens.cli import build_parser

yaml = pytest.importorskip("yaml", reason="PyYAML comes with the docs extra")

SCHEDULING = Path(__file__).parent.parent / "docs" / "scheduling.md"


def _manifest() -> dict[str, dict[str, Any]]:
    """Return the documents of the page's YAML block, by kind."""
    (block,) = re.findall(r"```yaml\n(.*?)```", SCHEDULING.read_text(), flags=re.DOTALL)
    return {document["kind"]: document for document in yaml.safe_load_all(block)}


def _container(cronjob: dict[str, Any]) -> dict[str, Any]:
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_manifest_command_parses() -> None:
    """The container's command is `stale-tokens sweep` with options the parser accepts."""
    command = _container(_manifest()["CronJob"])["command"]

    assert command[:2] == ["stale-tokens", "sweep"]
    arguments = build_parser().parse_args(command[1:])
    assert arguments.policy == "/etc/stale-tokens/policy.toml"
    assert arguments.ory_network_plan == "production"


def test_manifest_mounts_policy_it_reads(tmp_path: Path) -> None:
    """The ConfigMap is mounted where --policy reads it, and its policy.toml is valid."""
    manifest = _manifest()
    cronjob = manifest["CronJob"]
    container = _container(cronjob)
    (mount,) = container["volumeMounts"]
    (volume,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(manifest["ConfigMap"]["data"]["policy.toml"])

    assert "--policy=" + mount["mountPath"] + "/policy.toml" in container["command"]
    assert volume["configMap"]["name"] == manifest["ConfigMap"]["metadata"]["name"]
    assert mount["name"] == volume["name"]
    assert Policy.from_toml(policy_file).name == "production"


def test_manifest_limits_fit_deadline() -> None:
    """Concurrency is forbidden, and the lock expires with the Job's deadline."""
    manifest = _manifest()
    cronjob = manifest["CronJob"]
    job = cronjob["spec"]["jobTemplate"]["spec"]
    arguments = build_parser().parse_args(_container(cronjob)["command"][1:])
    secret_keys = set(manifest["Secret"]["stringData"])

    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert job["backoffLimit"] == 0
    assert arguments.redis_lock_ttl == job["activeDeadlineSeconds"]
    assert {"ORY_API_KEY", "STALE_TOKENS_REDIS_LOCK_URL"} <= secret_keys
