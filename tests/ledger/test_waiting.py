"""The pauses of a wait for an attempt whose start has not committed: short first, then
longer, and never past the wait's end."""

from __future__ import annotations

import itertools

from renderstate.ledger._waiting import FIRST_PAUSE, LONGEST_PAUSE, pauses


def test_pauses_double_from_ten_milliseconds_up_to_half_a_second() -> None:
    given = list(itertools.islice(pauses(3600.0), 9))
    assert given == [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.5, 0.5, 0.5]
    assert given[0] == FIRST_PAUSE
    assert max(given) == LONGEST_PAUSE


def test_no_pause_ends_past_the_wait() -> None:
    # Taken without sleeping, the clock barely moves: every pause that alone still ends
    # within the wait is given; the next (0.16 s) would not.
    assert list(pauses(0.1)) == [0.01, 0.02, 0.04, 0.08]
    assert list(pauses(0.005)) == []
