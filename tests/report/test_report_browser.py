"""The HTML report in a real browser: headless Chromium driven through chromedriver (selenium).

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``scripts/install-system.sh``) and the ``selenium``
package; skipped, with the reason, where any of them is missing. The page is opened with JavaScript switched off
(the report must be readable without it); the checks themselves run through WebDriver, which still may script.

``screenshot(html, out)`` is the same browser set-up as a plain function, for scripts that capture a report for the
docs, e.g.::

    .venv/bin/python -c "from tests.report.test_report_browser import \
screenshot; from pathlib import Path; screenshot(Path('runs/quickstart/report/index.html'), Path('report.png'))"
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from peftsum.store import layout, open_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# No network, no first-run UI, no background fetches; /tmp instead of a possibly tiny /dev/shm in containers.
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                "--disable-dev-shm-usage")
WIDTH, HEIGHT = 1400, 3000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        return (f"needs the Debian packages chromium and chromium-driver ({', '.join(missing)} missing): "
                "run scripts/install-system.sh")
    if importlib.util.find_spec("selenium") is None:
        return "needs the selenium package: .venv/bin/pip install selenium"
    return None


@contextmanager
def chromium(profile: Path, width: int = WIDTH, height: int = HEIGHT, javascript: bool = True) -> Iterator[Any]:
    """A headless Chromium WebDriver with its own throw-away profile in ``profile``; quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    if not javascript:  # the page's own scripts are blocked; WebDriver's execute_script still works
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(60)
        driver.set_window_size(width, height)
        yield driver
    finally:
        driver.quit()


def open_page(driver: Any, html: Path, timeout: float = 30.0) -> None:
    """Load a local file and wait until the document and its images are loaded."""
    driver.get(html.resolve().as_uri())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(
                "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{html} did not finish loading in {timeout:g} s")


def screenshot(html: Path, out: Path, width: int = WIDTH, height: int = HEIGHT, full_page: bool = False) -> Path:
    """Save a PNG screenshot of a local HTML file as headless Chromium renders it (JavaScript off).

    ``full_page`` grows the window to the document's height (at most 16,000 px) so the whole report is captured.
    """
    with tempfile.TemporaryDirectory(prefix="peftsum-chromium-") as profile, \
            chromium(Path(profile), width, height, javascript=False) as driver:
        open_page(driver, html)
        if full_page:
            page, chrome_ui = driver.execute_script(
                "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]")
            driver.set_window_size(width, min(16_000, int(page) + int(chrome_ui)))
        out.parent.mkdir(parents=True, exist_ok=True)
        if not driver.save_screenshot(str(out)):
            raise RuntimeError(f"chromium could not write {out}")
    return out


def expected_tables(store_root: Path, grid: str) -> tuple[set[str], list[str]]:
    """(data-table names the report must have, ids of the cells not done) for a fake grid."""
    store = open_store(str(store_root))
    cells = layout.read_json(store, layout.grid_key(grid, "grid.json"))["cells"]
    done_datasets, not_done = set(), []
    for cell_id, spec in cells.items():
        if layout.done_manifest(store, grid, cell_id) is not None:
            done_datasets.add(spec["dataset"]["name"])
        else:
            not_done.append(cell_id)
    names = {"cost-disk", "cost-train", "significance"}
    for dataset in done_datasets:
        names |= {f"quality-{dataset}", f"examples-{dataset}", f"eda-{dataset}"}
    if not_done:
        names.add("not-done")
    return names, not_done


@pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")
def test_report_renders_in_headless_chromium(tmp_path: Path, fake_cells: ModuleType) -> None:
    from peftsum.report import aggregate

    root, grid = tmp_path / "store", "browser"
    fake_cells.write_fake_grid(root, grid, 12, seed=0, with_failures=True)
    aggregate(open_store(str(root)), grid)
    index = root / grid / "report" / "index.html"
    assert index.is_file(), "peftsum aggregate wrote no report/index.html"
    expected, not_done = expected_tables(root, grid)
    assert not_done, "the fake grid should have cells that are not done"
    shot = tmp_path / "report.png"

    with chromium(tmp_path / "profile", javascript=False) as driver:
        open_page(driver, index)
        found = driver.execute_script(
            "return Array.from(document.querySelectorAll('table[data-table]'), t => t.getAttribute('data-table'))")
        assert not expected - set(found), f"tables missing: {sorted(expected - set(found))}; found {found}"
        listed = driver.execute_script(
            "return document.querySelector('table[data-table=\"not-done\"]').textContent")
        assert all(cell_id in listed for cell_id in not_done), f"not-done table lacks some of {not_done}"

        images = driver.execute_script(
            "return Array.from(document.images, i => ({src: (i.getAttribute('src') || '').slice(0, 30), "
            "complete: i.complete, width: i.naturalWidth, alt: i.alt, figure: i.getAttribute('data-figure')}))")
        assert images, "the report has no <img>"
        broken = [i for i in images if not (i["complete"] and i["width"] > 0)]
        assert not broken, f"images that did not decode: {broken}"
        assert all(i["src"].startswith("data:image/") for i in images), "images must be inlined as data: URIs"
        curves = [i for i in images if (i["figure"] or "").startswith("curves-")]  # trained cells with train.history
        assert curves and all(i["width"] > 300 for i in curves), f"no learning-curve figure among {images}"
        external = driver.execute_script(
            "return Array.from(document.querySelectorAll('[src], link[href]'), e => e.getAttribute('src') || "
            "e.getAttribute('href')).filter(u => !u.startsWith('data:'))")
        assert not external, f"the report loads external resources: {external}"

        assert driver.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data[:8] == PNG_MAGIC, "the screenshot is not a PNG"
    assert len(data) > 10_000, f"the screenshot is suspiciously small ({len(data)} bytes)"
