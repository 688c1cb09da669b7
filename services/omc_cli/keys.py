"""`omc keys …`: the gateway's API keys, in MySQL (table `api_keys`).

    omc keys create --tenant T --scopes a,b [--name N]   prints the key, once
    omc keys list [--tenant T] [--json]                  never shows a secret
    omc keys revoke KEY_ID

The table is created first when missing (the gateway's migrations), so these work on a
fresh stack.
"""

from __future__ import annotations

import json

import click
import mysql.connector

from omc_cli.friendly import friendly
from omc_config import Settings
from omc_errors import OmcError
from omc_gateway import apikeys
from omc_store.mysql import connect


def _connection(settings: Settings):
    try:
        apikeys.migrate(settings)
        return connect(settings)
    except mysql.connector.Error as error:
        raise OmcError(f"MySQL at {settings.mysql.host}:{settings.mysql.port} is not "
                       f"answering ({error.msg}); start it with `omc stack up mariadb`") from error


@click.group()
def keys() -> None:
    """API keys of the HTTP API: each has one tenant and scopes."""


@keys.command("create")
@click.option("--tenant", required=True, help="The tenant every request of the key acts for.")
@click.option("--scopes", required=True,
              help=f"Comma-separated, of: {', '.join(apikeys.SCOPES)}.")
@click.option("--name", default=None, help="A note saying what the key is for.")
@friendly
def create(tenant: str, scopes: str, name: str | None) -> None:
    """Create a key and print it. It is shown this once: only its hash is kept."""
    settings = Settings.from_env()
    connection = _connection(settings)
    try:
        token, key = apikeys.create_key(connection, tenant, scopes.split(","), name)
    finally:
        connection.close()
    click.echo(token)
    click.echo(f"key {key.key_id} for tenant {key.tenant}, scopes "
               f"{','.join(sorted(key.scopes))}; store it now, it is not shown again", err=True)


@keys.command("list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@friendly
def list_(tenant: str | None, as_json: bool) -> None:
    """The keys: id, tenant, scopes, when created and revoked (never a secret)."""
    connection = _connection(Settings.from_env())
    try:
        found = apikeys.list_keys(connection, tenant)
    finally:
        connection.close()
    if as_json:
        for key in found:
            click.echo(json.dumps(key.to_json()))
        return
    click.echo(f"{'key_id':<13} {'tenant':<20} {'created':<20} {'revoked':<20} scopes")
    for key in found:
        created = key.created_at.strftime("%Y-%m-%d %H:%M:%S") if key.created_at else "-"
        revoked = key.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if key.revoked_at else "-"
        click.echo(f"{key.key_id:<13} {key.tenant:<20} {created:<20} {revoked:<20} "
                   f"{','.join(sorted(key.scopes))}")


@keys.command("revoke")
@click.argument("key_id")
@friendly
def revoke(key_id: str) -> None:
    """Revoke KEY_ID: the gateway refuses it within its key cache time (30 s)."""
    connection = _connection(Settings.from_env())
    try:
        key = apikeys.revoke_key(connection, key_id)
    finally:
        connection.close()
    click.echo(f"revoked {key.key_id} (tenant {key.tenant}) at {key.revoked_at}")


COMMANDS = [keys]
