"""What the browser tests of the pages share: chromium through Playwright, signing in, and measuring
what a user meets (contrast of every piece of text, accessible names, horizontal overflow)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)")
browser_only = [pytest.mark.browser, needs_chromium]


@asynccontextmanager
async def chromium():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                   args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            await browser.close()


async def sign_in(page, url: str, token: str) -> None:
    from playwright.async_api import expect

    await page.goto(url + "/review/login")
    await page.fill("input[name=token]", token)
    await page.click("form.stack button.primary")
    await expect(page).to_have_url(url + "/review/answers")


# WCAG 2.x relative luminance and contrast ratio, computed in the page from the colours chromium
# resolved from the CSS: the text colour against the first opaque background behind the element.
# Large text (24px, or 18.66px bold) needs 3:1, the rest 4.5:1.
CONTRAST_JS = """
() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] >= 0.99) return c;
    }
    return [255, 255, 255, 1];
  };
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest("svg, [hidden], script, style, option")) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none" || !el.getClientRects().length) continue;
    let fg = parse(style.color); const bg = background(el);
    const alpha = fg[3] * Number(style.opacity);  // e.g. a disabled button's opacity
    fg = fg.map((v, i) => i < 3 ? v * alpha + bg[i] * (1 - alpha) : 1);
    const [a, b] = [lum(fg), lum(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const emoji = /^[\\p{Extended_Pictographic}\\s\\d·]+$/u.test(el.textContent.trim());
    if (!emoji && ratio < needed) out.push({ text: el.textContent.trim().slice(0, 60), tag: el.tagName,
      cls: el.className, ratio: Math.round(ratio * 100) / 100, needed });
  }
  return out;
}
"""


async def low_contrast(page) -> list[dict]:
    """Every visible piece of text on the page whose contrast is below WCAG AA."""
    return await page.evaluate(CONTRAST_JS)


CONTROL_ROLES = {"button", "link", "textbox", "searchbox", "combobox", "listbox", "checkbox", "radio", "slider",
                 "spinbutton", "switch", "menuitem", "tab"}


async def unnamed_controls(page) -> list[str]:
    """The controls (buttons, links, fields, selects) chromium's accessibility tree gives no name."""
    cdp = await page.context.new_cdp_session(page)
    try:
        tree = await cdp.send("Accessibility.getFullAXTree")
    finally:
        await cdp.detach()
    missing = []
    for node in tree["nodes"]:
        role = (node.get("role") or {}).get("value")
        if node.get("ignored") or role not in CONTROL_ROLES:
            continue
        if not str((node.get("name") or {}).get("value") or "").strip():
            missing.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
    return missing


async def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than its viewport (0 when nothing sticks out)."""
    return await page.evaluate("() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)")
