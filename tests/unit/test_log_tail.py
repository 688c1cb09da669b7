from __future__ import annotations

from pathlib import Path

from omc_stack.process import START_BANNER, log_tail


def test_tail_shows_only_the_latest_start(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text(f"{START_BANNER}x at 1 ===\nold failure\n{START_BANNER}x at 2 ===\nnew line\n")

    tail = log_tail(log)

    assert "new line" in tail
    assert "old failure" not in tail


def test_tail_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))

    assert log_tail(log, 3).splitlines() == ["line 97", "line 98", "line 99"]


def test_missing_log_says_so(tmp_path: Path) -> None:
    assert log_tail(tmp_path / "absent.log") == "(no log yet)"
