"""Episode markers: reading, building after a step, and pending claims."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from policy_identities import DAY, IDENTITY_ID, NOW, codes, make_identity, with_metadata_admin
from stale_tokens import (
    CredentialKind,
    Ladder,
    Policy,
    Step,
    build_claim_markers,
    build_step_markers,
    format_timestamp,
    read_markers,
)

EPISODE = "2026-02-01T00:00:00.000000Z"
STAMP = "2026-05-01T00:00:00.000000Z"


def test_read_markers_absent() -> None:
    """An identity without markers has no episode, steps, kinds or claim."""
    markers = read_markers(make_identity())

    assert markers.episode is None
    assert dict(markers.steps) == {}
    assert dict(markers.kinds) == {}
    assert markers.claim is None
    assert markers.findings == ()


def test_read_markers_full() -> None:
    """Every part of a well-formed marker object is read."""
    identity = make_identity(
        metadata_admin={
            "stale_tokens": {
                "episode": EPISODE,
                "steps": {"warn": STAMP},
                "kinds": {"oauth2": {"episode": EPISODE, "revoked_at": STAMP}},
                "claim": {
                    "step": "revoke",
                    "run_id": "run-1",
                    "claimed_at": STAMP,
                    "episode": EPISODE,
                },
            }
        }
    )

    markers = read_markers(identity)

    assert markers.episode == EPISODE
    assert dict(markers.steps) == {Step.WARN: datetime.fromisoformat(STAMP)}
    assert markers.kinds[CredentialKind.OAUTH2].episode == EPISODE
    assert markers.claim is not None
    assert markers.claim.step is Step.REVOKE
    assert markers.claim.run_id == "run-1"
    assert markers.findings == ()


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("revoked", "metadata_admin.stale_tokens"),
        ({"episode": 7, "steps": {"warn": STAMP}}, "metadata_admin.stale_tokens.episode"),
        ({"episode": EPISODE, "steps": ["warn"]}, "metadata_admin.stale_tokens.steps"),
        (
            {"episode": EPISODE, "steps": {"warn": "today"}},
            "metadata_admin.stale_tokens.steps.warn",
        ),
        ({"episode": EPISODE, "steps": {"nap": STAMP}}, "metadata_admin.stale_tokens.steps.nap"),
        ({"kinds": {"oauth2": {"episode": EPISODE}}}, "metadata_admin.stale_tokens.kinds.oauth2"),
        (
            {"kinds": {"fax": {"episode": EPISODE, "revoked_at": STAMP}}},
            "metadata_admin.stale_tokens.kinds.fax",
        ),
        ({"claim": {"step": "revoke", "run_id": ""}}, "metadata_admin.stale_tokens.claim"),
    ],
)
def test_read_markers_malformed(value: Any, where: str) -> None:
    """A malformed part is a finding naming its path and is treated as absent."""
    identity = make_identity(metadata_admin={"stale_tokens": value})

    markers = read_markers(identity)

    assert [finding.code for finding in markers.findings] == ["malformed_markers"]
    assert markers.findings[0].message.startswith(f"{where} of identity {IDENTITY_ID}")
    assert dict(markers.steps_done_in(EPISODE)) == {}
    assert markers.claim is None


def test_decide_malformed_markers_repeat_step() -> None:
    """With malformed markers decide reports them and returns the due step again."""
    identity = make_identity(
        last_activity=NOW - timedelta(days=91), metadata_admin={"stale_tokens": [1, 2]}
    )

    decision = Policy().decide(identity, NOW)

    assert codes(decision) == ["malformed_markers"]
    assert decision.step is Step.REVOKE


def test_steps_done_in_matches_same_instant() -> None:
    """An episode written with another offset or precision is the same episode."""
    identity = make_identity(
        metadata_admin={
            "stale_tokens": {"episode": "2026-02-01T02:00:00+02:00", "steps": {"warn": STAMP}}
        }
    )

    markers = read_markers(identity)

    assert Step.WARN in markers.steps_done_in(EPISODE)
    assert dict(markers.steps_done_in("2026-02-02T00:00:00Z")) == {}


def test_build_step_markers_new_episode() -> None:
    """After a step in a new episode, the markers name that episode and step only."""
    last = NOW - timedelta(days=84)
    identity = make_identity(
        last_activity=last,
        metadata_admin={
            "stale_tokens": {"episode": EPISODE, "steps": {"revoke": STAMP}, "version": "future"}
        },
    )
    decision = Policy().decide(identity, NOW)

    value = build_step_markers(identity, decision, done_at=NOW)

    assert value == {
        "version": "future",
        "episode": format_timestamp(last),
        "steps": {"warn": format_timestamp(NOW)},
        "kinds": {},
    }


def test_build_step_markers_keeps_same_episode() -> None:
    """Steps of the same episode keep their first time and gain the new one."""
    last = NOW - timedelta(days=91)
    episode = format_timestamp(last)
    identity = make_identity(
        last_activity=last,
        metadata_admin={"stale_tokens": {"episode": episode, "steps": {"warn": STAMP}}},
    )
    decision = Policy().decide(identity, NOW)

    value = build_step_markers(identity, decision, done_at=NOW)

    assert decision.step is Step.REVOKE
    assert value["steps"] == {"warn": STAMP, "revoke": format_timestamp(NOW)}
    assert value["kinds"] == {
        kind.value: {"episode": episode, "revoked_at": format_timestamp(NOW)}
        for kind in CredentialKind
    }


def test_build_step_markers_later_step_records_revocation() -> None:
    """A later step that carried the revocation records revoke as done too."""
    identity = make_identity(last_activity=NOW - timedelta(days=400))
    decision = Policy(ladder=Ladder()).decide(identity, NOW)

    value = build_step_markers(identity, decision, done_at=NOW)

    assert decision.step is Step.DEACTIVATE
    assert value["steps"] == {"deactivate": format_timestamp(NOW), "revoke": format_timestamp(NOW)}


def test_build_step_markers_kind_only_keeps_account_steps() -> None:
    """A revocation of one kind records that kind and no account step."""
    browser_last = NOW - timedelta(days=95)
    identity = make_identity(
        last_activity=NOW - DAY,
        metadata_admin={
            "last_activity_by_kind": {"browser_session": format_timestamp(browser_last)},
            "stale_tokens": {
                "kinds": {"oauth2": {"episode": EPISODE, "revoked_at": STAMP}},
                "claim": {
                    "step": "none",
                    "run_id": "run-1",
                    "claimed_at": STAMP,
                    "episode": EPISODE,
                },
            },
        },
    )
    decision = Policy().decide(identity, NOW)

    value = build_step_markers(identity, decision, done_at=NOW)

    assert value == {
        "episode": format_timestamp(NOW - DAY),
        "steps": {},
        "kinds": {
            "oauth2": {"episode": EPISODE, "revoked_at": STAMP},
            "browser_session": {
                "episode": format_timestamp(browser_last),
                "revoked_at": format_timestamp(NOW),
            },
        },
    }


def test_build_step_markers_round_trip() -> None:
    """Markers written by build_step_markers read back without findings."""
    identity = make_identity(last_activity=NOW - timedelta(days=91))
    decision = Policy().decide(identity, NOW)
    written = with_metadata_admin(
        identity, "stale_tokens", build_step_markers(identity, decision, done_at=NOW)
    )

    markers = read_markers(written)

    assert markers.findings == ()
    assert markers.episode == decision.episode
    assert set(markers.kinds) == set(CredentialKind)


def test_build_step_markers_custom_key() -> None:
    """The marker key of the policy is read when building markers."""
    policy = Policy(marker_key="sweeper")
    identity = make_identity(
        last_activity=NOW - timedelta(days=91),
        metadata_admin={"sweeper": {"episode": EPISODE, "extra": 1}},
    )
    decision = policy.decide(identity, NOW)

    value = build_step_markers(identity, decision, done_at=NOW, marker_key="sweeper")

    assert value["extra"] == 1
    assert value["steps"] == {"revoke": format_timestamp(NOW)}


def test_build_claim_markers_keeps_steps() -> None:
    """A claim is added next to the recorded steps without changing them."""
    identity = make_identity(
        last_activity=NOW - timedelta(days=91),
        metadata_admin={"stale_tokens": {"episode": EPISODE, "steps": {"warn": STAMP}}},
    )
    decision = Policy().decide(identity, NOW)

    value = build_claim_markers(identity, decision, run_id="run-2", claimed_at=NOW)

    assert value == {
        "episode": EPISODE,
        "steps": {"warn": STAMP},
        "claim": {
            "step": "revoke",
            "run_id": "run-2",
            "claimed_at": format_timestamp(NOW),
            "episode": decision.episode,
        },
    }


def test_claim_by_another_run() -> None:
    """A fresh claim of another run is returned; one's own or an expired claim is not."""
    identity = make_identity(last_activity=NOW - timedelta(days=91))
    decision = Policy().decide(identity, NOW)
    claimed = with_metadata_admin(
        identity,
        "stale_tokens",
        build_claim_markers(identity, decision, run_id="run-1", claimed_at=NOW),
    )
    markers = read_markers(claimed)

    other = markers.claim_by_another_run("run-2", NOW + timedelta(seconds=899))
    own = markers.claim_by_another_run("run-1", NOW)
    expired = markers.claim_by_another_run("run-2", NOW + timedelta(seconds=900))
    short = markers.claim_by_another_run("run-2", NOW + DAY / 2, claim_expiry_seconds=86_400)

    assert other is not None
    assert other.run_id == "run-1"
    assert other.step is Step.REVOKE
    assert own is None
    assert expired is None
    assert short is not None


def test_build_markers_reject_naive_times() -> None:
    """Naive times and an empty run id raise ValueError."""
    identity = make_identity(last_activity=NOW - timedelta(days=91))
    decision = Policy().decide(identity, NOW)
    naive = datetime(2026, 6, 1)  # noqa: DTZ001 - the naive value under test

    with pytest.raises(ValueError, match="done_at"):
        build_step_markers(identity, decision, done_at=naive)
    with pytest.raises(ValueError, match="claimed_at"):
        build_claim_markers(identity, decision, run_id="run-1", claimed_at=naive)
    with pytest.raises(ValueError, match="run_id"):
        build_claim_markers(identity, decision, run_id="", claimed_at=NOW)
