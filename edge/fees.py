"""Compute the fee of a certified copy from its page count."""

from __future__ import annotations

from edge.config import FeeSection


def copy_fee(pages: int, fees: FeeSection) -> int:
    """Return the fee in dong of one certified copy of ``pages`` pages."""
    if pages <= 0:
        return 0
    first = min(pages, fees.cheaper_from_page - 1)
    later = pages - first
    total = first * fees.first_pages_vnd + later * fees.later_pages_vnd
    return min(total, fees.max_per_copy_vnd)


def visit_fee(pages: int, copies: int, fees: FeeSection) -> int:
    """Return the fee of ``copies`` paper copies of a ``pages``-page document."""
    return copy_fee(pages, fees) * max(copies, 1)
