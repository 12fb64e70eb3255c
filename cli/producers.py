"""``tillflow producers`` (who may write which topics) and ``tillflow admin`` (the password)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from cli.console import err, out
from cli.console import fail as _fail
from cli.console import settings_with_logging as _settings

producers_app = typer.Typer(
    help="Producer clients: OAuth2 client credentials for POST /events/{topic}.",
    no_args_is_help=True,
)
admin_app = typer.Typer(help="The admin account of the API.", no_args_is_help=True)


@producers_app.command("create")
def producers_create(
    name: Annotated[str, typer.Argument(help="Who the client is, e.g. pos-store-12.")],
    topic: Annotated[
        list[str], typer.Option("--topic", "-t", help="An input topic it may write (repeat).")
    ],
) -> None:
    """Register a producer client; prints its id and secret (the secret is shown only now)."""
    from api.producers import UnknownTopic, create_client
    from infra.clients import redis_client

    settings = _settings()
    client = redis_client(settings)
    try:
        created = create_client(client, settings.keys, name, topic, datetime.now(UTC))
    except UnknownTopic as exc:
        raise _fail(exc) from None
    finally:
        client.close()
    out.print(f"client_id={created.client.client_id}")
    out.print(f"client_secret={created.secret}")
    err.print(
        f"scopes: {' '.join(created.client.scopes)}; store the secret now, it is kept only "
        "as a hash. Token: POST /oauth/token grant_type=client_credentials"
    )


@producers_app.command("list")
def producers_list() -> None:
    """Every producer client, its topics and whether it is revoked."""
    from api.producers import list_clients
    from infra.clients import redis_client

    settings = _settings()
    client = redis_client(settings)
    try:
        clients = list_clients(client, settings.keys)
    finally:
        client.close()
    table = Table("client_id", "name", "topics", "created", "revoked")
    for c in clients:
        revoked = c.revoked_at.isoformat() if c.revoked_at else "-"
        table.add_row(c.client_id, c.name, ",".join(c.topics), c.created_at.isoformat(), revoked)
    out.print(table)


@producers_app.command("revoke")
def producers_revoke(client_id: Annotated[str, typer.Argument(help="pc-…")]) -> None:
    """Revoke a client: its tokens are refused within TILLFLOW_PRODUCER_CHECK_S."""
    from api.producers import revoke_client
    from infra.clients import redis_client

    settings = _settings()
    client = redis_client(settings)
    try:
        record = revoke_client(client, settings.keys, client_id, datetime.now(UTC))
    finally:
        client.close()
    if record is None:
        raise _fail(ValueError(f"no producer client {client_id!r}"))
    out.print(f"revoked {record.client_id} ({record.name})")


@admin_app.command("hash-password")
def admin_hash_password(
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Print the argon2 hash of a password, for TILLFLOW_ADMIN_PASSWORD_HASH."""
    from api.passwords import hash_secret

    out.print(hash_secret(password), markup=False)
