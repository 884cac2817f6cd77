"""The app in a real browser: `streamlit run` driven by Debian's chromium through Playwright.

Every page is opened through the sidebar navigation; each must show its title and no Streamlit
exception box. On "Try it" a generated PNG is uploaded and the test waits for the predictions.
Needs /usr/bin/chromium (`apt-get install chromium`, never `playwright install`) and the
playwright package; skipped with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from PIL import Image

from qcnn import paths
from qcnn.data import data_dir_available
from qcnn.app import (
    page_controls,
    page_disagreements,
    page_hardware,
    page_overview,
    page_regime,
    page_results,
    page_timeline,
    page_training,
)
from qcnn.testing import write_synthetic_results
from qcnn.app.server import CHROMIUM, CHROMIUM_ARGS, free_port, is_healthy, stop, streamlit_command

pytestmark = pytest.mark.browser

# (navigation label, URL path, page title)
PAGES = [
    ("Overview", "", page_overview.TITLE),
    ("Timeline", "timeline", page_timeline.TITLE),
    ("Results", "results", page_results.TITLE),
    ("Controls", "controls", page_controls.TITLE),
    ("Regime", "regime", page_regime.TITLE),
    ("Training curves", "training", page_training.TITLE),
    ("Disagreements", "disagreements", page_disagreements.TITLE),
    ("Try it", "try_it", "Try it"),
    ("Quantum hardware", "hardware", page_hardware.TITLE),
]
CHECKPOINT_FILES = ("backbone", "qcnn", "classical")
PAGE_TIMEOUT_MS = 60_000
SCRIPT_DONE_JS = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
PREDICTION_TIMEOUT_MS = 120_000


def _missing_browser() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} not found: install it with `apt-get install -y chromium` (never `playwright install`)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (`pip install playwright`)"
    return None


if (_reason := _missing_browser()) is not None:
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402


def start_streamlit(port: int, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        streamlit_command(port),
        cwd=paths.REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{process.stdout.read()}")
        if is_healthy(port):
            return
        time.sleep(0.2)
    raise TimeoutError("streamlit did not answer /_stcore/health in time")


def random_checkpoints(directory: Path) -> Path:
    """Untrained models with the real architecture, so "Try it" can run without a reproduction."""
    import qcnn.compat  # noqa: F401
    import torch

    from qcnn.backbone import Backbone, load_backbone, save_backbone
    from qcnn.models import build_model, save_model

    torch.manual_seed(0)
    backbone = directory / "backbone.safetensors"
    save_backbone(Backbone(), backbone, source="random (browser test)")
    for kind in paths.MODEL_KINDS:
        save_model(build_model(kind, load_backbone(backbone)), directory / f"{kind}.safetensors", backbone)
    return directory


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """A running app on the committed results (synthetic ones where no summary is committed yet)."""
    env = {**os.environ}
    if (paths.RESULTS_DIR / paths.SUMMARY_FILE).is_file():
        env.pop("QCNN_RESULTS_DIR", None)
    else:
        env["QCNN_RESULTS_DIR"] = str(
            write_synthetic_results(tmp_path_factory.mktemp("results"), n_test=300, n_bootstrap=40)
        )
    if not all((paths.CHECKPOINT_DIR / f"{f}.safetensors").is_file() for f in CHECKPOINT_FILES):
        env["QCNN_CHECKPOINT_DIR"] = str(random_checkpoints(tmp_path_factory.mktemp("checkpoints")))
    port = free_port()
    process = start_streamlit(port, env)
    try:
        wait_healthy(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser(app_url):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser_page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield page
    page.close()


def wait_rendered(page: Page, title: str) -> None:
    """The page's title is shown and the script has finished (no "running" status)."""
    expect(page.locator("h1").filter(has_text=title)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(500)  # the "running" status shows only after a short delay: do not beat it
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PAGE_TIMEOUT_MS)


def no_exception_box(page: Page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()


def test_deep_link_on_a_fresh_server_opens_the_page_in_the_app(browser_page, app_url):
    """The first request of a new server goes straight to /results: it must still run inside the app."""
    browser_page.goto(f"{app_url}/results")
    wait_rendered(browser_page, page_results.TITLE)
    no_exception_box(browser_page)
    nav = browser_page.locator('[data-testid="stSidebarNav"]')
    expect(nav.get_by_text("Training curves")).to_be_visible()  # our navigation, not the pages/ folder's


def test_every_page_renders(browser_page, app_url):
    browser_page.goto(app_url)
    wait_rendered(browser_page, page_overview.TITLE)
    for label, url_path, title in PAGES:
        browser_page.locator('[data-testid="stSidebarNav"] a').filter(has_text=label).first.click()
        wait_rendered(browser_page, title)
        no_exception_box(browser_page)
        if url_path:
            assert urlparse(browser_page.url).path.rstrip("/").endswith(f"/{url_path}")
        if label in ("Timeline", "Results", "Training curves"):
            expect(browser_page.locator(".js-plotly-plot").first).to_be_visible(timeout=PAGE_TIMEOUT_MS)


def test_results_shows_the_referee_sections_and_overview_the_ledger(browser_page, app_url):
    """The threshold question, calibration and subgroups on Results; the claim ledger on the Overview."""
    browser_page.goto(f"{app_url}/results")
    wait_rendered(browser_page, page_results.TITLE)
    for heading in ("The threshold question", "Calibration", "Subgroups"):
        section = browser_page.get_by_role("heading", name=heading)
        section.scroll_into_view_if_needed()
        expect(section).to_be_visible()
    expect(
        browser_page.get_by_text("Explainable by threshold choice alone").or_(
            browser_page.get_by_text("Not explainable by threshold choice alone")
        )
    ).to_be_visible()
    no_exception_box(browser_page)
    browser_page.goto(app_url)
    wait_rendered(browser_page, page_overview.TITLE)
    expect(browser_page.get_by_role("heading", name="Claim by claim")).to_be_visible()
    expect(browser_page.get_by_text("QCNN wins four of five metrics").first).to_be_visible()


def test_try_it_predicts_an_uploaded_image(browser_page, app_url):
    browser_page.goto(f"{app_url}/try_it")
    wait_rendered(browser_page, "Try it")
    rng = np.random.default_rng(0)
    pixels = (rng.random((150, 200, 3)) * 80 + np.array([170, 110, 100])).clip(0, 255).astype(np.uint8)
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    browser_page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        files=[{"name": "lesion.png", "mimeType": "image/png", "buffer": png.getvalue()}]
    )
    expect(browser_page.get_by_role("heading", name="Predictions")).to_be_visible(timeout=PREDICTION_TIMEOUT_MS)
    browser_page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PREDICTION_TIMEOUT_MS
    )
    no_exception_box(browser_page)


# Elements whose text must be shown whole: metric values and labels (Streamlit ends cut text with "…").
OVERFLOWING_METRICS_JS = """() => [...document.querySelectorAll(
    '[data-testid="stMetricValue"], [data-testid="stMetricLabel"]')].flatMap(el =>
    [el, ...el.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1) ? [el.innerText] : [])"""
# Static tables: (first header, last header, whether the last column is inside the table's visible box).
TABLE_COLUMNS_JS = """() => [...document.querySelectorAll('[data-testid="stTable"]')].map(box => {
    const heads = [...box.querySelectorAll('th')];
    const last = heads[heads.length - 1].getBoundingClientRect(), shown = box.getBoundingClientRect();
    return [heads[0].innerText, heads[heads.length - 1].innerText, last.right <= shown.right + 1];
})"""


def _table_columns(page: Page) -> list[list]:
    """TABLE_COLUMNS_JS once the tables' layout has settled (column widths can change after the first
    paint on a loaded machine); a table that stays cut is reported as cut."""
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(f"() => ({TABLE_COLUMNS_JS})().every(t => t[2])", timeout=10_000)
    return page.evaluate(TABLE_COLUMNS_JS)


@pytest.mark.parametrize(("width", "height"), [(1024, 768), (390, 844)])
def test_every_page_fits_a_small_screen(browser, app_url, width, height):
    """No metric value or label is cut and no exception shows, on a projector and on a phone.

    At 1024 px every static table shows all its columns without scrolling; on a phone a wide table
    may scroll inside its own box (checked by the same measurement being allowed to fail there).
    """
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        for _, url_path, title in PAGES:
            page.goto(f"{app_url}/{url_path}")
            wait_rendered(page, title)
            no_exception_box(page)
            if title == page_overview.TITLE:  # the headline cards: two metrics each
                expect(page.locator('[data-testid="stMetricValue"]').nth(5)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            if title == page_results.TITLE:
                expect(page.locator('[data-testid="stTable"]')).to_have_count(4, timeout=PAGE_TIMEOUT_MS)
            assert page.evaluate(OVERFLOWING_METRICS_JS) == [], f"{title}: cut metric text at {width} px"
            if width >= 1024:
                tables = _table_columns(page)
                cut = [t[:2] for t in tables if not t[2]]
                assert not cut, f"{title}: tables cut at {width} px: {cut}"
        assert page.evaluate("() => window.innerWidth") == width
    finally:
        page.close()


def test_key_tables_show_all_their_columns_at_1024(browser, app_url):
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    try:
        page.goto(f"{app_url}/results")
        wait_rendered(page, page_results.TITLE)
        expect(page.locator('[data-testid="stTable"]')).to_have_count(4, timeout=PAGE_TIMEOUT_MS)
        tables = {(first, last): shown for first, last, shown in _table_columns(page)}
        expected = [
            ("metric", "Δ"),
            ("metric", "verdict"),
            ("metric", "Δ QCNN − classical"),
            ("matched at", "classical specificity"),
        ]
        for key in expected:
            assert tables.get(key) is True, f"table {key} missing or cut: {tables}"
    finally:
        page.close()


def test_a_shared_url_restores_the_view(browser, app_url):
    """Thresholds, seed and filters live in the query string: changing them writes it, opening it restores them."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{app_url}/results")
        wait_rendered(page, page_results.TITLE)
        page.locator('input[type="range"][aria-label="QCNN threshold"]').focus()
        for _ in range(3):
            page.keyboard.press("ArrowLeft")
        page.wait_for_url("**t_qcnn=0.47**", timeout=PAGE_TIMEOUT_MS)
        shared = page.url

        fresh = browser.new_page(viewport={"width": 1400, "height": 1000})  # another session
        try:
            fresh.goto(shared)
            wait_rendered(fresh, page_results.TITLE)
            expect(fresh.locator('input[type="range"][aria-label="QCNN threshold"]')).to_have_attribute(
                "value", "0.47", timeout=PAGE_TIMEOUT_MS
            )
            expect(fresh.locator('[data-testid="stTable"] td').filter(has_text="0.47").first).to_be_visible()

            fresh.goto(f"{app_url}/disagreements?t=0.3&label=malignant&gap=0.1")
            wait_rendered(fresh, page_disagreements.TITLE)
            expect(
                fresh.locator('input[type="range"][aria-label="Decision threshold (both models)"]')
            ).to_have_attribute("value", "0.3", timeout=PAGE_TIMEOUT_MS)
            expect(fresh.get_by_text("At threshold 0.30", exact=False)).to_be_visible()
            labels = fresh.locator('[data-testid="stMultiSelect"]').filter(has_text="Label")
            expect(labels.get_by_text("malignant")).to_be_visible()
            no_exception_box(fresh)
        finally:
            fresh.close()
    finally:
        page.close()


def _gallery_ids(page: Page) -> set[str]:
    """The image ids the gallery shows (its captions name the image, then both models), once every image
    has loaded: a caption appears only with its image, the image's Grad-CAM button with the script's run."""
    page.wait_for_function(SCRIPT_DONE_JS, timeout=PREDICTION_TIMEOUT_MS)
    buttons = page.locator(f'[class*="st-key-{page_disagreements.KEY}pick_"]')
    captions = (
        page.locator('[data-testid="stImageCaption"]').filter(has_text="classical").filter(has_not_text="p(malignant)")
    )
    expect(captions).to_have_count(buttons.count(), timeout=PAGE_TIMEOUT_MS)
    return {c.split(" · ")[0] for c in captions.all_inner_texts()}


def _selected(page: Page) -> str:
    """The image the view has selected, from its shareable URL."""
    page.wait_for_url("**image=*", timeout=PAGE_TIMEOUT_MS)
    return parse_qs(urlparse(page.url).query)["image"][0]


def _cam_image(page: Page, image_id: str) -> None:
    """The Grad-CAM panel shows ``image_id`` (its first image's caption) with both models' maps."""
    page.wait_for_function(SCRIPT_DONE_JS, timeout=PREDICTION_TIMEOUT_MS)
    expect(
        page.locator('[data-testid="stImageCaption"]')
        .filter(has_text=f"{image_id} · ")
        .filter(has_not_text="classical")
    ).to_have_count(1, timeout=PREDICTION_TIMEOUT_MS)  # the panel's first image
    expect(page.locator('[data-testid="stImageCaption"]').filter(has_text="QCNN · p(malignant)")).to_have_count(
        1, timeout=PREDICTION_TIMEOUT_MS
    )
    page.wait_for_url(f"**image={image_id}**", timeout=PAGE_TIMEOUT_MS)  # the selection is in the link too


def test_clicking_a_table_row_shows_its_grad_cams(browser, app_url):
    if data_dir_available() is None:
        pytest.skip("QCNN_DATA_DIR not set: the Disagreements page shows no images")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{app_url}/disagreements")
        wait_rendered(page, page_disagreements.TITLE)
        expect(page.locator('[data-testid="stImageCaption"]').first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        first = _selected(page)
        assert first in _gallery_ids(page), "the view opens on the table's top image"
        _cam_image(page, first)  # without a button

        grid = page.locator('[data-testid="stDataFrame"]').first
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 14, box["y"] + 35 + 35 + 17)  # the second row's selection checkbox
        page.wait_for_function(f"() => !location.search.includes('image={first}')", timeout=PAGE_TIMEOUT_MS)
        second = _selected(page)
        assert second != first and second in _gallery_ids(page)
        _cam_image(page, second)

        no_exception_box(page)

        page.goto(f"{app_url}/disagreements?seed=1")  # no committed weights for seed 1: said, not faked
        wait_rendered(page, page_disagreements.TITLE)
        expect(page.get_by_text("Grad-CAM needs seed 1's trained weights")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        expect(page.locator('[data-testid="stImageCaption"]').filter(has_text="p(malignant)")).to_have_count(0)
    finally:
        page.close()


# The point of plot ``i`` (in page order) farthest from every other point, in page pixels, with its image id
# (customdata[0]): clicking there can only hit that image. ``faint``: among the points drawn faint (outside
# the filters) or strong; ``skip``: an image id not to pick (the one already shown). Plotly draws these
# points with WebGL, so there is no DOM element per point to click; the axes' own data-to-pixel maps give
# the position.
ISOLATED_POINT_JS = """([i, faint, skip]) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')][i];
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  const pts = [];
  for (const t of gd._fullData) {
    if (!t.customdata || t.visible !== true) continue;
    for (let k = 0; k < t._length; k++) {
      const opacity = Array.isArray(t.marker.opacity) ? t.marker.opacity[k] : t.marker.opacity;
      pts.push([box.left + xa._offset + xa.c2p(t.x[k]), box.top + ya._offset + ya.c2p(t.y[k]), t.customdata[k][0],
                opacity < 0.5]);
    }
  }
  let best = null, bestGap = -1;
  for (const p of pts) {
    if (p[3] !== faint || p[2] === skip) continue;
    let gap = Infinity;
    for (const q of pts) if (q !== p) gap = Math.min(gap, (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2);
    if (gap > bestGap) { bestGap = gap; best = p; }
  }
  return {x: best[0], y: best[1], id: best[2], gap_px: Math.sqrt(bestGap)};
}"""


def _plot_index(page: Page, trace_name: str) -> int:
    """The page-order index of the first plotly chart that has a trace called ``trace_name``."""
    names = page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => (gd._fullData || []).map(t => t.name))"
    )
    return next(i for i, traces in enumerate(names) if trace_name in traces)


def test_clicking_a_scatter_point_a_map_point_or_a_gallery_image_shows_its_grad_cams(browser, app_url):
    if data_dir_available() is None:
        pytest.skip("QCNN_DATA_DIR not set: the Disagreements page shows no images")
    if not (paths.RESULTS_DIR / paths.MAP_CSV).is_file():
        pytest.skip("no committed map (qcnn map) to click on")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{app_url}/disagreements")
        wait_rendered(page, page_disagreements.TITLE)
        selected = _selected(page)
        _cam_image(page, selected)

        # a strong point of the scatter (it matches the filters), then a faint one of the map (it does not)
        for chart, trace, faint in (("scatter", "only QCNN right", False), ("map", "malignant", True)):
            index = _plot_index(page, trace)
            plot = page.locator(".js-plotly-plot").nth(index)
            plot.scroll_into_view_if_needed()
            point = page.evaluate(ISOLATED_POINT_JS, [index, faint, selected])
            assert point["gap_px"] > 4, f"no {chart} point stands apart enough to click: {point}"
            page.mouse.move(point["x"], point["y"])
            # plotly picks the clicked point from its hover state: wait until the hover label names it
            expect(plot.locator(".hoverlayer").get_by_text(point["id"])).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            page.mouse.down()
            page.mouse.up()
            page.wait_for_url(f"**image={point['id']}**", timeout=PREDICTION_TIMEOUT_MS)
            _cam_image(page, point["id"])
            outside = page.get_by_text(f"{point['id']} does not match the filters")
            expect(outside).to_have_count(1 if faint else 0)
            selected = point["id"]

        gallery = sorted(_gallery_ids(page) - {selected})
        assert gallery, "the gallery shows other images than the selected one"
        page.locator(f".st-key-{page_disagreements.KEY}pick_{gallery[0]} button").first.click()
        page.wait_for_url(f"**image={gallery[0]}**", timeout=PREDICTION_TIMEOUT_MS)
        _cam_image(page, gallery[0])
        no_exception_box(page)
    finally:
        page.close()
