"""`sneakerd users create-admin | promote`. The username, email and password rules are the
domain's (`sneakerd.domain.accounts`), so an admin made here could have registered through the
API, and an input the API refuses is refused here for the same reasons."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from sneakerd.cli.runtime import CLOCK, CliError, emit, refuse, require_schema, with_store
from sneakerd.config import Settings
from sneakerd.domain import accounts
from sneakerd.domain.audit import CLI_ACTOR
from sneakerd.domain.model import Role
from sneakerd.passwords import hash_password_sync
from sneakerd.store import Store
from sneakerd.views import user_view


def read_password() -> str:
    """The password from stdin when it is not a terminal, else prompted twice. Ctrl-D at the
    prompt (or an empty stdin) is a refusal; Ctrl-C is the KeyboardInterrupt `main` ends on."""
    try:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password again: ") != password:
                raise CliError("the two passwords differ")
    except EOFError:
        raise CliError("no password given") from None
    refuse("the password", accounts.new_password_problems(password))
    return password


def ask_password(args: argparse.Namespace) -> None:
    """`create-admin`'s part before the event loop starts (`Command.prepare`): a prompt that
    blocked inside the loop could not be interrupted, as the loop only asks its task to
    stop when Ctrl-C comes, and a task blocked in a read never hears it."""
    refuse("the username", accounts.username_problems(args.username))
    refuse(f"the email {args.email!r}", accounts.address_problems(email_identity(args.email)))
    args.password = read_password()


def email_identity(raw: str) -> str:
    """The account identity of an email given on the command line, as the API forms it."""
    try:
        return accounts.email_identity(raw)
    except accounts.InvalidEmail as exc:
        raise CliError(f"not an email address: {raw!r}: {str(exc).lower()}") from None


async def cmd_users_create_admin(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "password", None) is None:  # called without `main` (its prepare step)
        ask_password(args)
    email = email_identity(args.email)
    password_hash = await asyncio.to_thread(
        hash_password_sync, args.password, settings.bcrypt_rounds
    )

    async def work(store: Store) -> Any:
        await require_schema(store)
        return await store.create_user(
            args.username, email, password_hash, Role.ADMIN, CLOCK.now_ms(), actor=CLI_ACTOR
        )

    user = await with_store(settings, work)
    emit(args, {"user": user_view(user)}, lambda out: print(f"admin {user.id} created", file=out))
    return 0


async def cmd_users_promote(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> Any:
        await require_schema(store)
        return await store.set_role(
            email_identity(args.email), Role.ADMIN, actor=CLI_ACTOR, now=CLOCK.now_ms()
        )

    user = await with_store(settings, work)
    if user is None:
        raise CliError(f"no user with email {args.email}", "not_found")
    emit(
        args,
        {"user": user_view(user)},
        lambda out: print(f"{user.email} is now an admin", file=out),
    )
    return 0
