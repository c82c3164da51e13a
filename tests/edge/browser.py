"""Drive the kiosk's screens in headless Chromium and check accessibility."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import axe_playwright_python
from playwright.sync_api import Page

AXE = Path(axe_playwright_python.__file__).parent / "axe.min.js"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "edge"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the page; return the WCAG 2.2 AA violations."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async (tags) => await axe.run(document, "
        "{runOnly: {type: 'tag', values: tags}})",
        WCAG_TAGS,
    )
    return [
        {"id": v["id"], "nodes": [n["html"] for n in v["nodes"]][:3]}
        for v in result["violations"]
    ]


def small_targets(page: Page) -> list[str]:
    """Return the visible clickable elements smaller than 44x44 CSS px."""
    found: list[str] = page.evaluate(
        """() => Array.from(document.querySelectorAll(
              'button, a[href], input:not([type=hidden]), select, [role=button]'))
            .filter(e => e.offsetParent !== null)
            .filter(e => { const r = e.getBoundingClientRect();
                           return r.width < 44 || r.height < 44; })
            .map(e => e.outerHTML.slice(0, 80))"""
    )
    return found


def check_screen(page: Page, name: str, shots: list[str]) -> None:
    """Screenshot the screen and assert zero axe violations and big targets."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    shots.append(name)
    assert axe_violations(page) == [], name
    assert small_targets(page) == [], name


def wait_step(page: Page, step: str, timeout_ms: int = 30_000) -> None:
    """Wait until the screen of ``step`` is shown."""
    page.wait_for_selector(f"body[data-step='{step}']", timeout=timeout_ms)


def click(page: Page, name: str) -> None:
    """Click the button named ``name`` and wait for the next screen."""
    page.get_by_role("button", name=re.compile(f"^{re.escape(name)}")).first.click()
    page.wait_for_load_state("domcontentloaded")


def press_to(page: Page, name: str, key: str = "Enter", limit: int = 60) -> None:
    """Tab to the control whose text starts with ``name`` and press ``key``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        label = page.evaluate(
            "() => { const e = document.activeElement; return e ? "
            "(e.innerText || e.value || e.getAttribute('aria-label') || '') : ''; }"
        )
        if label.strip().startswith(name):
            assert focus_visible(page), name
            page.keyboard.press(key)
            return
    raise AssertionError(f"no control named {name!r} reached with Tab")


def focus_visible(page: Page) -> bool:
    """Tell whether the focused element draws a focus indicator."""
    return bool(
        page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return s.outlineStyle !== 'none' && s.outlineWidth !== '0px'; }"
        )
    )
