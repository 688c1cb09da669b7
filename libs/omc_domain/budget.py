"""Rolling budget windows, in event time. Pure.

    Reservation(action_id, task_id, token, amount, at, released)
    used(reservations, token, now, window_seconds) -> int
    window_start(now, window_seconds) -> datetime

A reservation counts against its budget (native value when `token` is None, else that token's)
while it is not released and was made inside the window: `at > now - window_seconds`. One made
exactly at `now - window_seconds` no longer counts; one stamped after `now` (an event from a
clock ahead of ours) still counts, erring on the side of spending less. Tokens are compared
case-insensitively. `now` is always an event's time (its occurred_at), never a clock read here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Reservation:
    """Budget set aside for one action (from BudgetReserved); `released` after BudgetReleased."""

    action_id: str
    task_id: str
    token: str | None
    """The ERC-20 token whose budget it uses; None: native value."""
    amount: int
    """Wei, or the token's base units."""
    at: datetime
    """When it was reserved: the BudgetReserved's occurred_at."""
    released: bool = False


def window_start(now: datetime, window_seconds: int) -> datetime:
    """The instant before which reservations no longer count (exclusive)."""
    return now - timedelta(seconds=window_seconds)


def used(reservations: Iterable[Reservation], token: str | None, now: datetime,
         window_seconds: int) -> int:
    """Sum of the live reservations of `token` (None: native) made after now - window."""
    start = window_start(now, window_seconds)
    wanted = None if token is None else token.lower()
    return sum(r.amount for r in reservations
               if not r.released and r.at > start
               and (None if r.token is None else r.token.lower()) == wanted)
