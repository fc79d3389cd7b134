"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol.

``make test`` installs the package when it is missing (target ``chromium-bin``); tests that
need it call :func:`chromium_binary`, which installs it the same way or skips when that is
impossible. The protocol runs over ``websockets`` (installed with ``uvicorn[standard]``).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

START_TIMEOUT_S = 30.0


def chromium_binary() -> str:
    """Path of ``chromium``; installs Debian's package when missing, else skips the test."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
            check=True,
            env=env,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("chromium is not installed and could not be installed (make chromium-bin)")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("chromium not found after installing it")
    return found


class HeadlessChromium:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, width: int, height: int = 900) -> None:
        self.width, self.height = width, height
        self._dir = tempfile.mkdtemp(prefix="nbi-chromium-")
        args = [
            chromium_binary(),
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--remote-debugging-port=0",
            f"--user-data-dir={self._dir}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._ids = itertools.count(1)
        self._stack = ExitStack()
        self._ws = self._connect()

    def _connect(self) -> ClientConnection:
        port_file = Path(self._dir) / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                msg = "chromium did not start its DevTools endpoint"
                raise RuntimeError(msg)
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as resp:  # noqa: S310
                pages = [t for t in json.load(resp) if t.get("type") == "page"]
            if pages or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        return self._stack.enter_context(ws)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call one protocol method and return its result (events are skipped)."""
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv(timeout=60))
            if msg.get("id") == call_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        """Value of a JavaScript expression in the page."""
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(str(res["exceptionDetails"]))
        return res["result"].get("value")

    def open(self, path: Path, *, media: str = "screen") -> None:
        """Load a local file at the page's width in ``media`` (screen or print) and wait."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.send("Emulation.setEmulatedMedia", media=media)
        self.send("Page.navigate", url=path.resolve().as_uri())
        deadline = time.monotonic() + 30
        ready = "document.readyState === 'complete' && [...document.images].every(i => i.complete)"
        while not self.evaluate(ready):
            if time.monotonic() > deadline:
                msg = f"{path} did not finish loading"
                raise RuntimeError(msg)
            time.sleep(0.05)

    def screenshot(self, out: Path) -> None:
        """PNG of the whole page at the page's width."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        shot = self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1},
        )
        out.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        self._stack.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> HeadlessChromium:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


OVERFLOW_JS = """(() => {
  const root = document.documentElement;
  const vw = root.clientWidth;
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > vw + 0.5 || r.left < -0.5) {
      wide.push(`${el.tagName.toLowerCase()}.${el.className} ${Math.round(r.left)}..${Math.round(r.right)}`);
    }
  }
  const scrolling = [...document.querySelectorAll('*')]
    .filter(el => el !== root && el !== document.body && el.scrollWidth > el.clientWidth + 1
      && getComputedStyle(el).overflowX !== 'visible')
    .map(el => `${el.tagName.toLowerCase()}.${el.className} ${el.scrollWidth}>${el.clientWidth}`);
  const images = [...document.images].map(i => ({
    loaded: i.complete && i.naturalWidth > 0, width: i.getBoundingClientRect().width }));
  return {scrollWidth: root.scrollWidth, clientWidth: vw, innerWidth: window.innerWidth,
          wide: wide.slice(0, 20), scrolling: scrolling.slice(0, 20), images};
})()"""
"""Layout facts of the loaded page: the document's and viewport's widths, every element that
sticks out of the viewport, every box that scrolls sideways, and the images."""
