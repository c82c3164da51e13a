"""Draw small inline SVG line charts of a kiosk's recent health, server-side."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 360
HEIGHT = 90
PAD = 4


def line_chart(
    title: str, values: Sequence[float | None], top: float | None = None
) -> str:
    """Return an accessible SVG polyline of ``values`` (gaps where None)."""
    known = [v for v in values if v is not None]
    label = escape(title)
    if not known:
        return f'<p class="nochart">{label}: no data yet</p>'
    high = top if top is not None else max(max(known), 1e-9)
    step = (WIDTH - 2 * PAD) / max(1, len(values) - 1)
    points = " ".join(
        f"{PAD + i * step:.1f},{_y(v, high):.1f}"
        for i, v in enumerate(values)
        if v is not None
    )
    last = known[-1]
    return (
        f'<figure><svg role="img" aria-label="{label}, latest {last:.1f}" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#f7f7f7"/>'
        f'<polyline fill="none" stroke="#1f5fa8" stroke-width="2" points="{points}"/>'
        f"</svg><figcaption>{label}: latest {last:.1f}</figcaption></figure>"
    )


def _y(value: float, high: float) -> float:
    ratio = min(max(value / high, 0.0), 1.0)
    return HEIGHT - PAD - ratio * (HEIGHT - 2 * PAD)
