"""End to end: TracePanel in JupyterLab, driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO_ROOT / "test-artifacts" / "panel.png"
XSS = "<script>window.__xss = 1</script>"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt install chromium)"),
]

LIVE_CALLS = 120

NOTEBOOK_CELLS = [
    """\
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import time
import warnings
import numpy as np
import tensorflow as tf
import tfnp_inspect
warnings.simplefilter("ignore", tfnp_inspect.ViolationWarning)""",
    f"""\
def add_one_in_place(x):
    x += 1  # inside tf.function, x is a view of the tensor's buffer: this rewrites the tensor
    return x

def label_lengths(labels):
    return np.array([len(item) for item in labels.ravel()], dtype=np.int64)

@tf.function
def step(x):
    return tf.numpy_function(add_one_in_place, [x], tf.float32)

recorder = tfnp_inspect.install(capture="full")
for _ in range(3):
    step(tf.random.uniform([64]))
tf.numpy_function(label_lengths, [tf.constant([{XSS!r}, "plain"])], tf.int64)""",
    """\
panel = tfnp_inspect.TracePanel(recorder)
panel""",
    f"""\
for _ in range({LIVE_CALLS}):  # the panel must update while this cell is still running
    step(tf.random.uniform([64]))
    time.sleep(0.04)
tfnp_inspect.uninstall()""",
]


KERNEL_IDLE = """() => {
    const notebook = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = notebook && notebook.sessionContext && notebook.sessionContext.session
        && notebook.sessionContext.session.kernel;
    return Boolean(kernel) && kernel.status === 'idle';
}"""


ALL_CELLS_RUN = """() => {
    const prompts = [...document.querySelectorAll('.jp-InputPrompt')];
    return prompts.length > 0 && prompts.every((p) => /\\[\\d+\\]/.test(p.textContent));
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_notebook(path: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


def wait_for_server(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {timeout_s}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def jupyterlab(tmp_path):
    """A private JupyterLab on a free loopback port: its config, data, runtime and settings in tmp."""
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "panel_e2e.ipynb")
    settings = tmp_path / "lab-settings"
    news = settings / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "jupyterlab.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "jupyter", "lab", "--no-browser",
                f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                "--LabApp.expose_app_in_browser=True",
                *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []),  # CI containers
            ],
            env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_server(f"{base}/api/status?token={token}", process, log)
        yield f"{base}/lab/tree/panel_e2e.ipynb?token={token}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_panel_in_jupyterlab(jupyterlab):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})  # the whole panel fits
            page.goto(jupyterlab)
            page.wait_for_function(KERNEL_IDLE, timeout=120_000)
            # Not awaited: the command's promise resolves only when every cell has run.
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

            panel = page.locator(".tfnp-panel")
            expect(panel.locator(".tfnp-row").first).to_be_visible(timeout=180_000)
            # Rows recorded by the last cell show up while it runs, not when it ends.
            page.wait_for_function(
                """() => {
                    const status = document.querySelector('.tfnp-panel .tfnp-header .tfnp-muted');
                    const prompts = [...document.querySelectorAll('.jp-InputPrompt')];
                    const lastCellRunning = prompts.length > 0 && prompts.at(-1).textContent.includes('*');
                    return status !== null && parseInt(status.textContent, 10) > 4 && lastCellRunning;
                }""",
                timeout=60_000,
            )
            page.wait_for_function(ALL_CELLS_RUN, timeout=120_000)
            expect(panel.locator(".tfnp-header")).to_contain_text(f"{LIVE_CALLS + 4} of 10000 kept")
            violation = panel.locator(".tfnp-rows .tfnp-badge-violation", has_text="mutated-input")
            expect(violation.first).to_be_visible()

            panel.locator(".tfnp-function-filter").select_option("label_lengths")
            rows = panel.locator(".tfnp-row")
            expect(rows).to_have_count(1)
            rows.first.click()
            detail = panel.locator(".tfnp-detail")
            expect(detail.locator(".tfnp-preview").first).to_contain_text(XSS)
            assert page.evaluate("typeof window.__xss") == "undefined"
            assert panel.locator("script").count() == 0

            panel.locator(".tfnp-function-filter").select_option("add_one_in_place")
            expect(rows).to_have_count(50)  # one page of the 123 calls
            expect(panel.locator(".tfnp-pager")).to_contain_text("page 1 of 3")
            rows.first.click()
            expect(detail.locator(".tfnp-array-title", has_text="input 0")).to_be_visible()
            expect(detail.locator(".tfnp-findings .tfnp-badge-violation", has_text="mutated-input")).to_be_visible()
            expect(detail.locator(".tfnp-value-hist svg rect").first).to_be_attached()
            detail.locator(".tfnp-replay").click()
            expect(detail.locator(".tfnp-replay-result")).to_contain_text("reproduced")

            # The timeline: a lane per thread, a bar per call, violations marked, zoom to a window
            timeline = panel.locator(".tfnp-timeline")
            bars = timeline.locator("rect.tfnp-tl-bar")
            expect(bars.first).to_be_attached()
            assert bars.count() >= 2
            expect(timeline.locator("rect.tfnp-tl-violation").first).to_be_attached()
            expect(timeline.locator("polygon.tfnp-tl-mark").first).to_be_attached()
            assert timeline.locator(".tfnp-tl-lane-label").count() >= 2  # the main thread and TF's
            assert panel.locator("script").count() == 0
            span = timeline.locator(".tfnp-tl-range")
            everything = span.inner_text()
            expect(timeline.locator(".tfnp-tl-reset")).to_be_disabled()
            timeline.locator(".tfnp-tl-zoom-in").click()
            expect(span).not_to_have_text(everything)
            expect(timeline.locator(".tfnp-tl-reset")).to_be_enabled()
            timeline.locator(".tfnp-tl-reset").click()
            expect(span).to_have_text(everything)
            box = timeline.locator("svg.tfnp-tl-chart").bounding_box()
            y = box["y"] + box["height"] - 6
            page.mouse.move(box["x"] + box["width"] * 0.5, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=5)
            page.mouse.up()  # dragged across a fifth of the plot: that window is shown
            expect(span).not_to_have_text(everything)
            timeline.locator(".tfnp-tl-reset").click()
            expect(span).to_have_text(everything)
            flagged = timeline.locator("rect.tfnp-tl-violation").last
            seq = flagged.get_attribute("data-seq")
            flagged.dispatch_event("click")  # a bar selects its call
            expect(detail.locator(".tfnp-detail-title")).to_contain_text(f"#{seq} ")
            expect(timeline.locator("rect.tfnp-tl-selected")).to_have_count(1)
            hints = panel.locator(".tfnp-hints")
            expect(hints.locator(".tfnp-badge-hint", has_text="unknown-shape").first).to_be_visible()
            expect(panel.locator(".tfnp-summary .tfnp-signature").first).to_contain_text("add_one_in_place(float32[64])")

            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.locator(".tfnp-panel").screenshot(path=str(SCREENSHOT))
            assert page.evaluate("typeof window.__xss") == "undefined"
        finally:
            browser.close()
