"""time_limit: the alarm behind regex and check timeouts, nested."""

from __future__ import annotations

import contextlib
import signal
import time

import pytest

from planrun import StepTimeout
from planrun.types import alarm_handler, time_limit


@pytest.mark.parametrize("mode", ["eager", "lazy"])
def test_inner_limit_fires_first_and_outer_is_rearmed(mode: str) -> None:
    """Eager: each limit arms the timer; lazy (in a session's alarm_handler): only the earliest deadline does."""
    with alarm_handler() if mode == "lazy" else contextlib.nullcontext():
        start = time.monotonic()
        with pytest.raises(StepTimeout, match="outer ran longer than 1s"):
            with time_limit(1, "outer"):
                with pytest.raises(StepTimeout, match="inner ran longer than 0.2s"):
                    with time_limit(0.2, "inner"):
                        time.sleep(5)
                inner_done = time.monotonic() - start
                time.sleep(5)
        assert inner_done < 1  # the inner one fired, not the outer one
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # nothing left armed
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


def test_a_longer_inner_limit_leaves_the_outer_in_charge() -> None:
    with pytest.raises(StepTimeout, match="outer ran longer than 0.2s"):
        with time_limit(0.2, "outer"):
            with time_limit(10, "inner"):
                time.sleep(5)


def test_no_alarm_left_after_a_quick_block() -> None:
    with time_limit(5, "quick"):
        pass
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
