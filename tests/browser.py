"""Open an HTML report in Debian's headless Chromium: save a screenshot, check the console, return the DOM."""

from __future__ import annotations

import subprocess
from pathlib import Path

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu"]


def render_in_chromium(page: Path, screenshot: Path, height: int) -> str:
    """Screenshot ``page`` into ``screenshot`` (1200 x ``height``), assert it logged nothing, return its DOM."""
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)
    run = subprocess.run(["chromium", *FLAGS, "--enable-logging=stderr", "--v=0", f"--screenshot={screenshot}",
                          f"--window-size=1200,{height}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert screenshot.exists() and screenshot.stat().st_size > 10_000, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert console == []  # the page logs nothing: no errors, no failed resources
    return subprocess.run(["chromium", *FLAGS, "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120).stdout
