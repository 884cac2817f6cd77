"""Launch the app as a real server and drive it with Debian's Chromium (browser test, benchmark)."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from qcnn.paths import REPO_ROOT

APP = REPO_ROOT / "streamlit_app.py"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; never `playwright install`, it downloads a browser
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_command(port: int, launcher: str = "streamlit") -> list[str]:
    """The app on loopback (no external-IP lookup), no file watcher, no usage statistics.

    ``launcher``: ``streamlit`` (`streamlit run`, models load after the first page view), ``qcnn``
    (`qcnn app`, models load from the moment the process starts) or ``qcnn-preload`` (`qcnn app
    --preload`, the server starts once they are loaded).
    """
    options = [
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    if launcher in ("qcnn", "qcnn-preload"):
        return [sys.executable, "-m", "qcnn", "app", *(["--preload"] if launcher == "qcnn-preload" else []), *options]
    return [sys.executable, "-m", "streamlit", "run", str(APP), *options]


def is_healthy(port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=timeout) as response:
            return response.read().decode().strip() == "ok"
    except OSError:
        return False


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate the server, killing it if it does not exit in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
