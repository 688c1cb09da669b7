"""Rolling budget windows in event time: what counts, at the edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from omc_domain.budget import Reservation, used, window_start

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
HOUR = 3600


def reserved(amount: int, seconds_ago: float, *, token: str | None = None,
             released: bool = False, action: str = "a") -> Reservation:
    return Reservation(action_id=action, task_id="t", token=token, amount=amount,
                       at=NOW - timedelta(seconds=seconds_ago), released=released)


def test_nothing_reserved_uses_nothing() -> None:
    assert used((), None, NOW, HOUR) == 0


def test_live_reservations_inside_the_window_add_up() -> None:
    assert used([reserved(5, 0), reserved(7, 10), reserved(11, HOUR - 1)], None, NOW, HOUR) == 23


@pytest.mark.parametrize(("seconds_ago", "counts"), [
    (HOUR - 0.000001, True),   # a microsecond inside
    (HOUR, False),             # exactly at now - window: out
    (HOUR + 1, False),
    (0, True),                 # at now
    (-5, True),                # stamped after now (a clock ahead): still counts
])
def test_the_window_edge(seconds_ago: float, counts: bool) -> None:
    assert used([reserved(3, seconds_ago)], None, NOW, HOUR) == (3 if counts else 0)


def test_released_reservations_do_not_count() -> None:
    assert used([reserved(5, 1, released=True), reserved(2, 1)], None, NOW, HOUR) == 2


def test_native_and_each_token_are_separate_budgets_tokens_in_any_case() -> None:
    rs = [reserved(1, 1), reserved(10, 1, token=TOKEN), reserved(100, 1, token=TOKEN.lower()),
          reserved(1000, 1, token="0x" + "11" * 20)]

    assert used(rs, None, NOW, HOUR) == 1
    assert used(rs, TOKEN.upper().replace("0X", "0x"), NOW, HOUR) == 110
    assert used(rs, "0x" + "22" * 20, NOW, HOUR) == 0


def test_the_window_moves_with_now() -> None:
    rs = [reserved(5, 0)]

    assert used(rs, None, NOW + timedelta(seconds=HOUR - 1), HOUR) == 5
    assert used(rs, None, NOW + timedelta(seconds=HOUR), HOUR) == 0
    assert window_start(NOW, HOUR) == NOW - timedelta(hours=1)
