"""How fast the results explorer renders: every page, and the app's cold start.

Also reachable as ``qcnn bench app [--runs N] [--results-dir DIR] [--out FILE]``.

What is measured
- Page render: one page script run from request to fully rendered element tree, in-process with
  streamlit's AppTest (the server-side work of a page view: imports already done, caches warm —
  what a user waits for when opening or re-running a page, minus the browser's own drawing).
  After the app's entry point and two warm-up runs, the median of ``--runs`` runs. ``first``
  is the page's very first run in the process (it pays for lazy imports such as scikit-learn).
- Cold start: from launching ``streamlit run`` (a fresh process) until the first page (Overview)
  is fully rendered in a real browser (Debian chromium via Playwright, started beforehand so its
  own launch is not counted): title visible and the script finished. ``health`` is the time until
  ``/_stcore/health`` answers. Without chromium or playwright only ``health`` is measured.

Targets on this 2-core CPU: every page that needs no model under 1 s; cold start under 3 s.
Writes results/bench_app.json (or --out). Results come from results/ when its summary.json exists,
else from synthetic files (qcnn.testing) in a temporary folder; the JSON says which.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from qcnn import paths
from qcnn.app.server import APP, CHROMIUM, CHROMIUM_ARGS, free_port, is_healthy, stop, streamlit_command
from qcnn.benchmark import save_result

PAGES = ("overview", "timeline", "results", "training", "disagreements", "try_it")
NEEDS_MODEL = {"try_it"}
PAGE_TARGET_S = 1.0
COLD_START_TARGET_S = 3.0


def time_pages(runs: int) -> dict[str, dict]:
    from streamlit.testing.v1 import AppTest

    out = {}
    entry = AppTest.from_file(str(APP), default_timeout=300)
    start = time.perf_counter()
    entry.run()
    entry_s = time.perf_counter() - start
    for page in PAGES:
        at = AppTest.from_file(str(APP), default_timeout=300)
        at.run()
        at.switch_page(f"pages/{page}.py")
        start = time.perf_counter()
        at.run()
        first = time.perf_counter() - start
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].value}")
        for _ in range(2):
            at.run()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        needs_model = page in NEEDS_MODEL
        out[page] = {"median_s": round(median, 4), "first_s": round(first, 4), "runs_s": [round(t, 4) for t in times],
                     "target_s": None if needs_model else PAGE_TARGET_S,
                     "meets_target": None if needs_model else median < PAGE_TARGET_S,
                     "note": "needs the trained models (loaded once, then cached)" if needs_model else ""}
    out["_entry_first_run_s"] = round(entry_s, 4)
    return out


def cold_start(env: dict[str, str]) -> dict:
    port = free_port()
    command = streamlit_command(port)
    browser_ctx = browser = page = None
    if CHROMIUM.is_file():
        try:
            from playwright.sync_api import sync_playwright

            browser_ctx = sync_playwright().start()
            browser = browser_ctx.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
        except ImportError:
            page = None
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not is_healthy(port, timeout=1):
            if process.poll() is not None:
                raise RuntimeError("streamlit exited during start-up")
            if time.perf_counter() - start > 120:
                raise TimeoutError("no /_stcore/health answer in 120 s")
            time.sleep(0.02)
        health = time.perf_counter() - start
        result = {"health_s": round(health, 3), "target_s": COLD_START_TARGET_S}
        if page is None:
            result |= {"first_page_s": None, "meets_target": None,
                       "method": "health endpoint only (no chromium/playwright here)"}
            return result
        from qcnn.app.page_overview import TITLE

        page.goto(f"http://127.0.0.1:{port}/")
        page.locator("h1").filter(has_text=TITLE).wait_for(timeout=120_000)
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)
        first = time.perf_counter() - start
        result |= {"first_page_s": round(first, 3), "meets_target": first < COLD_START_TARGET_S,
                   "method": "launch `streamlit run` -> Overview rendered in chromium (title shown, script done)"}
        return result
    finally:
        stop(process)
        if browser is not None:
            browser.close()
        if browser_ctx is not None:
            browser_ctx.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per page after warm-up (default 5)")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="results folder to render (default: results/ if it has summary.json, else synthetic)")
    parser.add_argument("--out", type=Path, default=paths.RESULTS_DIR / "bench_app.json")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold-start measurement")
    args = parser.parse_args(argv)

    tmp = None
    if args.results_dir is not None:
        results_dir, source = args.results_dir.resolve(), f"given: {args.results_dir}"
    elif (paths.RESULTS_DIR / paths.SUMMARY_FILE).is_file():
        results_dir, source = paths.RESULTS_DIR, "committed results/"
    else:
        from qcnn.testing import write_synthetic_results

        tmp = tempfile.TemporaryDirectory(prefix="qcnn_bench_app_")
        results_dir = write_synthetic_results(tmp.name, n_test=4159, seeds=(0, 1, 2, 3, 4), epochs=30,
                                              n_bootstrap=200)
        source = "synthetic (qcnn.testing: no summary.json in results/ yet), 4,159 test images, 5 seeds"
    os.environ["QCNN_RESULTS_DIR"] = str(results_dir)
    env = {**os.environ}

    print(f"results: {source}")
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    pages = time_pages(args.runs)
    entry = pages.pop("_entry_first_run_s")
    print(f"\n{'page':<15}{'median':>10}{'first run':>12}{'target':>10}  ok")
    for page, r in pages.items():
        target = f"< {r['target_s']:.1f} s" if r["target_s"] else "n/a"
        ok = {True: "yes", False: "NO", None: "-"}[r["meets_target"]]
        print(f"{page:<15}{r['median_s']:>9.3f}s{r['first_s']:>11.3f}s{target:>10}  {ok}  {r['note']}")

    cold = None
    if not args.no_cold_start:
        cold = cold_start(env)
        first = f"{cold['first_page_s']:.2f} s" if cold["first_page_s"] is not None else "n/a"
        ok = {True: "yes", False: "NO", None: "-"}[cold["meets_target"]]
        print(f"\ncold start: health {cold['health_s']:.2f} s, first page rendered {first} "
              f"(target < {COLD_START_TARGET_S:.0f} s) ok: {ok}\n  measured: {cold['method']}")

    report = {
        "benchmark": "app_pages", "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "results_source": source, "runs_per_page": args.runs,
        "page_render": pages, "entry_point_first_run_s": entry, "cold_start": cold,
        "method": {"page_render": "AppTest in-process script run, median after 2 warm-up runs",
                   "cold_start": cold["method"] if cold else None},
    }
    save_result(report, args.out)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
