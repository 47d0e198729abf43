"""Opens a trailwatch report in headless Chromium (Debian's package) through Playwright, and
prints what a person would see, as JSON: script errors, the incidents shown with their tactics
and timeline marks, the countries marked on the map, the tables' rows, what the anomaly filter
leaves. Writes a full-page screenshot.

usage: report.py PAGE.html SCREENSHOT.png [FILTER_TEXT]
"""

import json
import pathlib
import sys

from playwright.sync_api import sync_playwright

page_path, shot = sys.argv[1], sys.argv[2]
filter_text = sys.argv[3] if len(sys.argv) > 3 else None

# The flags keep Chromium off the network: the page must need none.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, requests = [], []
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
    page.on(
        "request",
        lambda r: not r.url.startswith("file:") and not r.url.startswith("data:") and requests.append(r.url),
    )
    page.goto(pathlib.Path(page_path).resolve().as_uri(), wait_until="load")
    page.wait_for_selector("body[data-ready=yes]", timeout=10_000)
    incidents = page.eval_on_selector_all(
        "article.incident",
        """els => els.map(e => ({
            id: e.dataset.incident,
            visible: e.getBoundingClientRect().height > 0,
            summary: e.querySelector('.summary').textContent,
            tactics: [...e.querySelectorAll('.tactic.on')].map(t => t.textContent),
            marks: e.querySelectorAll('svg.timeline g.mark').length,
            events: [...e.querySelectorAll('table.events tr[data-event]')].map(r => r.dataset.event),
        }))""",
    )
    result = {
        "title": page.title(),
        "errors": errors,
        "requests": requests,
        "incidents": incidents,
        "countries_drawn": page.locator("svg.world path.country").count(),
        "countries_with_events": page.eval_on_selector_all(
            "svg.world path.country", "els => els.filter(e => e.getAttribute('fill') !== '#e5e7eb').map(e => e.dataset.cc)"
        ),
        "countries_marked": page.eval_on_selector_all("svg.world circle.hot", "els => els.map(e => e.dataset.cc)"),
        "identities": page.eval_on_selector_all(
            "#identity-table tbody tr", "rows => rows.map(r => r.querySelector('td.who').textContent)"
        ),
        "anomalies": page.locator("#anomaly-table tbody tr[data-event]").count(),
        "totals": {
            k: page.inner_text(f"#n-{k}") for k in ["identities", "events", "anomalies", "incidents"]
        },
    }
    page.screenshot(path=shot, full_page=True)
    # A click on the first anomalous country's dot: the anomaly rows left are that country's.
    dot = page.locator("svg.world circle.hot").first
    if dot.count():
        cc = dot.get_attribute("data-cc")
        dot.dispatch_event("click")
        result["by_country"] = {
            "cc": cc,
            "rows": page.eval_on_selector_all(
                "#anomaly-table tbody tr[data-event]", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.cc)"
            ),
        }
    if filter_text is not None:
        page.fill("input[data-table=anomaly-table]", filter_text)
        result["filtered"] = page.eval_on_selector_all(
            "#anomaly-table tbody tr[data-event]",
            "rows => rows.filter(r => !r.hidden).map(r => r.textContent)",
        )
    browser.close()
print(json.dumps(result))
