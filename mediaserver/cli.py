"""`mediaserver serve | migrate | create-admin` (the CLI contract in DESIGN.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from mediaserver.config import Settings, SettingsError, load_settings
from mediaserver.log import configure_logging

log = logging.getLogger("mediaserver")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediaserver", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run one node (applies pending migrations first)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help="also run a built-in demo source and register it as a stream",
    )
    commands.add_parser("migrate", help="apply pending database migrations and exit")
    admin = commands.add_parser("create-admin", help="create an admin, or promote an account")
    admin.add_argument("--email", required=True)
    admin.add_argument(
        "--password",
        help="the password (visible to other users in `ps`: prefer the prompt, or a pipe "
        "into standard input, which are used when this is not given)",
    )
    admin.add_argument("--name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(
            os.environ,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            demo=getattr(args, "demo", None),
        )
        configure_logging(settings.log_level)
        if settings.demo:
            from mediaserver.demo import with_stubs

            settings = with_stubs(settings)
        if args.command == "serve":
            return _serve(settings)
        if args.command == "migrate":
            return asyncio.run(_migrate(settings))
        password = args.password if args.password is not None else _read_password()
        return asyncio.run(_create_admin(settings, args.email, password, args.name))
    except SettingsError as exc:
        print(f"mediaserver: {exc}", file=sys.stderr)
        return 2


def _serve(settings: Settings) -> int:
    from aiohttp import web

    from mediaserver.app import StartupError, build_app
    from mediaserver.keys import load_secrets

    secrets = load_secrets(settings)  # bad key settings fail here, before listening
    app = build_app(settings, secrets)

    def listening(_: object) -> None:
        url = settings.base_url
        print(
            f"mediaserver listening on {url} (API docs at {url}/docs)", file=sys.stderr, flush=True
        )

    try:
        # run_app: SIGINT/SIGTERM shut the app down in order (on_shutdown, then cleanup),
        # in-flight requests get up to 30 s; its `print` says when the socket is bound.
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            shutdown_timeout=30,
            access_log=None,
            print=listening,
        )
    except StartupError as exc:
        print(f"mediaserver: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # resources are reached inside StartupError; this is the bind
        print(
            f"mediaserver: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr
        )
        return 2
    return 0


async def _database_url(settings: Settings) -> str:
    from mediaserver.db import start_embedded

    return settings.database_url or await start_embedded(settings.data_dir)


async def _migrate(settings: Settings) -> int:
    from mediaserver.app import StartupError, reaching
    from mediaserver.migrate import apply_migrations

    try:
        async with reaching("DATABASE_URL", settings.database_url):
            applied = await apply_migrations(await _database_url(settings))
    except StartupError as exc:
        print(f"mediaserver: {exc}", file=sys.stderr)
        return 2
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


async def _create_admin(settings: Settings, email: str, password: str, name: str | None) -> int:
    from control.auth.schemas import RegisterIn
    from mediaserver.app import admin_service

    try:  # the same email and password rules as registration
        RegisterIn(email=email, password=password, name=name or "Admin")
    except ValueError as exc:
        print(_first_error(exc), file=sys.stderr)
        return 2
    from mediaserver.app import StartupError, reaching

    try:
        async with reaching("DATABASE_URL", settings.database_url), admin_service(settings) as auth:
            user = await auth.create_admin(email, password, name)
    except StartupError as exc:
        print(f"mediaserver: {exc}", file=sys.stderr)
        return 2
    print(f"admin {user.email} ({user.user_id}) ready")
    return 0


def _read_password() -> str:
    """From a prompt (twice, not echoed) on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            print("mediaserver: the passwords differ", file=sys.stderr)
            raise SystemExit(2)
        return password
    return sys.stdin.readline().rstrip("\r\n")


def _first_error(exc: ValueError) -> str:
    from pydantic import ValidationError

    from control.api import describe_error

    if isinstance(exc, ValidationError):
        return "mediaserver: " + describe_error(exc.errors()[0], "body").replace("Field", "Option")
    return f"mediaserver: {exc}"
