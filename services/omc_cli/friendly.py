"""Turn the project's errors into messages instead of tracebacks."""

from __future__ import annotations

import sys
from functools import wraps

import click

from omc_errors import OmcError


def friendly(command):
    """Wrap a click command: an `OmcError` prints `error: …` on stderr and exits 1."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except OmcError as error:
            click.secho(f"error: {error}", fg="red", err=True)
            sys.exit(1)

    return wrapper
