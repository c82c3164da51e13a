"""The fee of a certified copy."""

from __future__ import annotations

import pytest

from edge.config import FeeSection
from edge.fees import copy_fee, visit_fee


@pytest.mark.parametrize(
    ("pages", "fee"),
    [(0, 0), (1, 2000), (2, 4000), (3, 5000), (10, 12000), (500, 200_000)],
)
def test_copy_fee_follows_the_schedule(pages: int, fee: int) -> None:
    assert copy_fee(pages, FeeSection()) == fee


def test_fee_is_configurable_and_counts_copies() -> None:
    fees = FeeSection(first_pages_vnd=3000, later_pages_vnd=500, max_per_copy_vnd=6000)
    assert copy_fee(4, fees) == 6000
    assert visit_fee(3, 2, fees) == 2 * 6000
