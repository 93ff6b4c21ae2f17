"""``exempt``, ``unexempt`` and ``reactivate``: an administrator's actions on one identity."""

from __future__ import annotations

import argparse
import contextlib
import uuid
from collections.abc import Awaitable, Callable

from .._errors import NotFoundError
from .._jsonpatch import existing_paths
from .._kratos import KratosAdmin
from .._reactivate import reactivate
from ._audit import add_audit_options, open_audit_sink
from ._common import (
    EXIT_OK,
    KRATOS_URL_VARIABLE,
    CommandError,
    Console,
    add_connection_options,
    load_policy,
    open_kratos,
)

__all__ = ["add_identity_parsers"]


def add_identity_parsers(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ``exempt``, ``unexempt`` and ``reactivate`` commands."""
    for name, summary, description, run in (
        (
            "exempt",
            "never sweep this identity",
            (
                "Set the policy's opt-out flag (metadata_admin.skip_stale_revocation by "
                "default) to true, keeping every other metadata_admin key."
            ),
            _run_exempt,
        ),
        (
            "unexempt",
            "sweep this identity again",
            "Remove the policy's opt-out flag from metadata_admin, keeping every other key.",
            _run_unexempt,
        ),
        (
            "reactivate",
            "set a deactivated identity back to active",
            (
                "Set the identity's state to active and clear a suspension. The user signs "
                "in again, which starts a new inactivity episode."
            ),
            _run_reactivate,
        ),
    ):
        parser = subparsers.add_parser(name, parents=parents, help=summary, description=description)
        parser.add_argument("identity_id", metavar="IDENTITY_ID", help="the identity's UUID")
        if name == "reactivate":
            add_audit_options(parser)
        else:
            parser.add_argument(
                "--policy",
                metavar="FILE",
                help="policy TOML file whose opt_out_key to use (default: skip_stale_revocation)",
            )
        # exempt, unexempt and reactivate read one identity and never list pages.
        add_connection_options(parser, needs_hydra=False, lists_identities=False)
        parser.set_defaults(run=run)


async def _run_exempt(arguments: argparse.Namespace, console: Console) -> int:
    key = _opt_out_path(arguments.policy)

    async def exempt(kratos: KratosAdmin, identity_id: str) -> None:
        await kratos.set_metadata_admin(identity_id, {key: True})

    await _on_identity(arguments, console, exempt)
    console.stdout.write(
        f"identity {arguments.identity_id} is exempt: metadata_admin.{'.'.join(key)} = true\n"
    )
    return EXIT_OK


async def _run_unexempt(arguments: argparse.Namespace, console: Console) -> int:
    key = _opt_out_path(arguments.policy)

    was_exempt = False

    async def unexempt(kratos: KratosAdmin, identity_id: str) -> None:
        nonlocal was_exempt
        # remove_metadata_admin skips missing keys, so an unknown id must be caught by a read.
        identity = await kratos.get_identity(identity_id)
        was_exempt = bool(existing_paths(identity.metadata_admin, [key]))
        if was_exempt:
            await kratos.remove_metadata_admin(identity_id, [key])

    await _on_identity(arguments, console, unexempt)
    flag = f"metadata_admin.{'.'.join(key)}"
    if was_exempt:
        console.stdout.write(
            f"identity {arguments.identity_id} is no longer exempt: {flag} removed\n"
        )
    else:
        console.stdout.write(
            f"identity {arguments.identity_id} was not exempt ({flag} is not set); "
            "nothing changed\n"
        )
    return EXIT_OK


async def _run_reactivate(arguments: argparse.Namespace, console: Console) -> int:
    changed = False

    async def activate(kratos: KratosAdmin, identity_id: str) -> None:
        nonlocal changed
        async with contextlib.AsyncExitStack() as stack:
            audit = open_audit_sink(arguments, console, stack)
            changed = await reactivate(kratos, identity_id, audit=audit)

    await _on_identity(arguments, console, activate)
    if changed:
        console.stdout.write(f"identity {arguments.identity_id} is active again\n")
    else:
        console.stdout.write(
            f"identity {arguments.identity_id} is already active; nothing changed\n"
        )
    return EXIT_OK


async def _on_identity(
    arguments: argparse.Namespace,
    console: Console,
    action: Callable[[KratosAdmin, str], Awaitable[None]],
) -> None:
    identity_id = arguments.identity_id
    try:
        uuid.UUID(identity_id)
    except ValueError:
        raise CommandError(
            f"{identity_id!r} is not an identity id; Kratos identity ids are UUIDs such as "
            "9f425a8d-7efc-4768-8f23-7647a74fdf13"
        ) from None

    async with open_kratos(arguments, console) as kratos:
        try:
            await action(kratos, identity_id)
        except NotFoundError as exc:
            raise CommandError(
                f"identity {identity_id} was not found in Kratos; check the id and that "
                f"--kratos-url or {KRATOS_URL_VARIABLE} names the right project"
            ) from exc


def _opt_out_path(policy_path: str | None) -> tuple[str, ...]:
    return tuple(load_policy(policy_path).opt_out_key.split("."))
