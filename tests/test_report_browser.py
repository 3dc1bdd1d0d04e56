"""Render the study report in a real headless Chromium (Debian package `chromium`).

Drives the browser over the DevTools protocol: collects console errors, uncaught exceptions,
failed loads and any request that leaves the page (a self-contained report makes none), checks
every image decoded (naturalWidth > 0) and the synthetic banner is visible, and keeps a
screenshot of the first screen and of three sections in tests/artifacts/.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from fakepipe import FAKE_DECLARED, REPORT_CONFIG, make_fake_results
from radiogenomics.reporting import report

websocket = pytest.importorskip("websocket", reason="websocket-client is not installed")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium not found: install Debian's package with `apt-get install -y chromium`",
    ),
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# the screenshots kept (`make screenshots` copies them to docs/images/): name -> section id
SCREENS = {"first_screen": None, "methods": "methods", "models": "models-and-evaluation",
           "radiogenomics": "radiogenomics"}  # fmt: skip
STARTUP_LIMIT_S = 60
EVENT_LIMIT_S = 60

PAGE_STATE = """JSON.stringify({
  images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,
                                                  width: i.naturalWidth})),
  banner: (() => { const b = document.getElementById('synthetic-banner');
                   if (!b) return null;
                   const r = b.getBoundingClientRect();
                   return {text: b.innerText, visible: r.width > 0 && r.height > 0 &&
                           getComputedStyle(b).display !== 'none', top: r.top}; })(),
  title: document.title
})"""


class DevTools:
    """A minimal DevTools-protocol session on one page target."""

    def __init__(self, ws_url: str):
        self.ws = websocket.create_connection(ws_url, timeout=EVENT_LIMIT_S, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str) -> dict:
        for event in self.events:
            if event.get("method") == method:
                self.events.remove(event)
                return event
        deadline = time.monotonic() + EVENT_LIMIT_S
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("method") == method:
                return message
            self.events.append(message)
        raise TimeoutError(f"no {method} event")

    def close(self):
        with contextlib.suppress(Exception):
            self.ws.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "--window-size=1280,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while not (port_file.is_file() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start (exit code {process.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as response:
            targets = json.load(response)
        page = next(t for t in targets if t["type"] == "page")
        session = DevTools(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            session.call(f"{domain}.enable")
        session.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        yield session
        session.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def load(browser: DevTools, path: Path) -> dict:
    """Open a file, wait for load, and return its state plus every problem the browser saw."""
    browser.events.clear()
    browser.call("Page.navigate", url=path.resolve().as_uri())
    browser.wait_for("Page.loadEventFired")
    state = json.loads(
        browser.call("Runtime.evaluate", expression=PAGE_STATE, returnByValue=True)["result"][
            "value"
        ]
    )
    problems = []
    for event in browser.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            problems.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            problems.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            problems.append(f"log error: {params['entry'].get('text')}")
        elif method == "Network.loadingFailed":
            problems.append(f"load failed: {params.get('errorText')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith(("data:", "file:", "about:")):
                problems.append(f"external request: {url}")
    state["problems"] = problems
    return state


def test_report_renders_in_chromium(browser, tmp_path):
    make_fake_results(tmp_path)
    page, _ = report.build_report(
        tmp_path, REPORT_CONFIG, captions_dir=tmp_path / "workflow/report", declared=FAKE_DECLARED
    )
    state = load(browser, page)

    assert state["problems"] == []  # the inline table script runs without an error
    assert len(state["images"]) == 4
    assert all(image["complete"] and image["width"] > 0 for image in state["images"]), state
    assert state["banner"]["visible"] and state["banner"]["top"] < 900  # on the first screen
    assert "SYNTHETIC COHORT" in state["banner"]["text"]

    shot = browser.call("Page.captureScreenshot", format="png")["data"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / "report_first_screen.png"
    target.write_bytes(base64.b64decode(shot))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_harness_catches_broken_pages(browser, tmp_path):
    """Negative control: the checks above would fail on a broken page."""
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><head><title>x</title></head><body>"
        '<img alt="bad" src="data:image/png;base64,AAAA">'
        "<script>console.error('boom'); undefined_function();</script></body></html>"
    )
    state = load(browser, broken)
    assert state["images"] == [{"alt": "bad", "complete": True, "width": 0}]
    assert state["banner"] is None
    kinds = {problem.split(":")[0] for problem in state["problems"]}
    assert {"console.error", "exception"} <= kinds


@pytest.mark.workflow
def test_tiny_study_report_renders_in_chromium(browser, tiny_study):
    """The report of a real (tiny) study run: every figure decodes, no console errors."""
    state = load(browser, tiny_study / "results/report/index.html")
    assert state["problems"] == []
    assert len(state["images"]) > 10
    assert all(image["complete"] and image["width"] > 0 for image in state["images"]), state
    assert "SYNTHETIC COHORT" in state["banner"]["text"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, section in SCREENS.items():
        if section:
            top = browser.call(
                "Runtime.evaluate", returnByValue=True,
                expression=f"(() => {{ const s = document.getElementById('{section}'); if (!s) return null;"
                " s.scrollIntoView(); return window.scrollY; })()",
            )["result"].get("value")
            assert top, f"section {section} is missing or does not scroll"
        shot = browser.call("Page.captureScreenshot", format="png")["data"]
        (ARTIFACTS / f"tiny_study_report_{name}.png").write_bytes(base64.b64decode(shot))
