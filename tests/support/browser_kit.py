"""Pages in Debian's headless Chromium (Playwright) for the browser tests, and what a page at a
phone's width must not do: overflow it sideways."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE_WIDTH, PHONE_HEIGHT = 390, 844
"""A phone's viewport in CSS pixels (an iPhone 12 to 15)."""


def phone(browser: Browser) -> Page:
    """A page as a phone shows it: 390 x 844 CSS pixels, three device pixels each, and the
    mobile viewport (a page wider than the screen is zoomed out, not cut)."""
    viewport: Any = {"width": PHONE_WIDTH, "height": PHONE_HEIGHT}
    return browser.new_page(viewport=viewport, device_scale_factor=3, is_mobile=True)


_OVERFLOWING = """() => {
  // the layout viewport: a mobile browser zooms a page that is too wide out, which makes
  // innerWidth grow with it, never clientWidth
  const width = Math.min(window.innerWidth, document.documentElement.clientWidth);
  const found = [];
  const page = document.documentElement.scrollWidth;
  if (page > width) found.push(`the page is ${page}px wide`);
  for (const element of document.body.querySelectorAll("*")) {
    const box = element.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;  // not rendered
    if (box.right > width + 0.5) {
      const id = element.id ? "#" + element.id : "";
      const classes = [...element.classList].map((c) => "." + c).join("");
      const text = (element.textContent || "").trim().slice(0, 30);
      const name = element.tagName.toLowerCase() + id + classes;
      found.push(`${name} "${text}" ends at ${Math.round(box.right)}px`);
    }
  }
  return found;
}"""


def overflowing(page: Page) -> list[str]:
    """What sticks out of the viewport's width (the whole page, or any rendered element's right
    edge), described; empty when the page fits."""
    found: list[str] = page.evaluate(_OVERFLOWING)
    return found
