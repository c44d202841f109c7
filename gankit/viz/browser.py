"""Open an HTML file in headless Chromium and report what a reader would see.

Talks the DevTools protocol over ``--remote-debugging-pipe`` (Chromium reads commands on
fd 3 and writes replies on fd 4, each a JSON text ended by a NUL byte), so it needs no
websocket client, no driver and no network: the standard library and a ``chromium`` binary.
Used by the report's and the studio's browser tests (:func:`open_page` drives a live page)
and to take the README's screenshots.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# What the page shows: every image decoded (or why not), every chart's size and line lengths,
# and whether the page is wider than the screen (sideways scrolling on a phone).
PROBE = """(async () => {
  const imgs = await Promise.all([...document.images].map(i => i.decode().then(
      () => ({ok: true, w: i.naturalWidth, h: i.naturalHeight}), e => ({ok: false, why: String(e)}))));
  const charts = [...document.querySelectorAll('svg.chart')].map(s => {
    const b = s.getBoundingClientRect();
    return {w: b.width, h: b.height, title: s.getAttribute('aria-label'),
            lines: [...s.querySelectorAll('polyline')].map(p => p.getTotalLength()),
            dots: s.querySelectorAll('circle').length};
  });
  return {imgs, charts, pageWidth: document.documentElement.scrollWidth,
          viewWidth: window.innerWidth, title: document.title};
})()"""


def find_chromium() -> str | None:
    """The path of a Chromium-family browser, or None."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    """What :func:`check_page` saw."""

    images: list[dict[str, Any]]
    charts: list[dict[str, Any]]
    page_width: int
    view_width: int
    title: str
    screenshot: bytes  # PNG
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads


class _Pipe:
    """One DevTools session over the two pipe ends; events are kept as they arrive."""

    def __init__(self, write_fd: int, read_fd: int, timeout: float):
        self.w, self.r, self.timeout = write_fd, read_fd, timeout
        self.buffer, self.events, self.next_id = b"", [], 0

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read_message(deadline))


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:300])
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
            out.append(f"console.{p['type']}: " + json.dumps(p.get("args"))[:300])
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
            out.append("log: " + p["entry"].get("text", "")[:300])
    return out


def check_page(html_file: str | Path, width: int = 1000, height: int = 800,
               binary: str | None = None, timeout: float = 60.0, full_page: bool = False) -> PageCheck:
    """Load ``html_file`` in a ``width`` x ``height`` headless window, probe it and take a
    screenshot (of the window, or of the whole page with ``full_page``)."""
    url = Path(html_file).resolve().as_uri()
    with _chromium(binary, timeout) as pipe:
        return _probe(pipe, url, width, height, full_page)


@contextmanager
def _chromium(binary: str | None, timeout: float) -> Iterator[_Pipe]:
    """A headless Chromium with a fresh profile, closed (or killed) on the way out."""
    binary = binary or find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium binary found (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # the child's fds 3 and 4 must be these pipe ends: dup'ed there before exec (and
        # close_fds off, since subprocess would close 3 and 4 after this hook ran)
        def wire() -> None:
            # first out of the way (a pipe end may itself be fd 3 or 4), then into place
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        proc = subprocess.Popen(
            [binary, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--hide-scrollbars", f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=wire)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        pipe = _Pipe(to_chrome_w, from_chrome_r, timeout)
        try:
            yield pipe
        finally:
            try:
                pipe.call("Browser.close")
            except Exception:  # already gone: the kill below is enough
                pass
            os.close(to_chrome_w)
            os.close(from_chrome_r)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _open_tab(pipe: _Pipe, url: str, width: int, height: int) -> str:
    """A new tab of ``width`` x ``height`` showing ``url`` (loaded); its session id."""
    target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
    s = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.call(f"{domain}.enable", session=s)
    pipe.call("Emulation.setDeviceMetricsOverride", session=s, width=width, height=height,
              deviceScaleFactor=1, mobile=width < 600)
    pipe.events.clear()
    pipe.call("Page.navigate", session=s, url=url)
    pipe.wait_for("Page.loadEventFired")
    return s


class Page:
    """A page open in headless Chromium that a test drives: run JavaScript in it, wait for
    a condition, take screenshots, read the errors it logged (see :func:`open_page`)."""

    def __init__(self, pipe: _Pipe, session: str):
        self.pipe, self.session = pipe, session

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited)."""
        seen = self.pipe.call("Runtime.evaluate", session=self.session, expression=expression,
                              awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in seen:
            raise RuntimeError(f"{expression[:80]!r} failed: {json.dumps(seen['exceptionDetails'])[:300]}")
        return seen["result"].get("value")

    def wait_until(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; its value. TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            time.sleep(0.05)

    def screenshot(self) -> bytes:
        """The whole page as PNG bytes."""
        size = self.pipe.call("Page.getLayoutMetrics", session=self.session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.pipe.call("Page.captureScreenshot", session=self.session, format="png",
                              clip=clip, captureBeyondViewport=True)["data"]
        return base64.b64decode(shot)

    @property
    def errors(self) -> list[str]:
        """Console errors, exceptions and failed loads so far."""
        failed = [f"failed load: {e['params'].get('errorText')}" for e in self.pipe.events
                  if e.get("method") == "Network.loadingFailed"]
        return _errors(self.pipe.events) + failed


@contextmanager
def open_page(url: str, width: int = 1000, height: int = 800, binary: str | None = None,
              timeout: float = 60.0) -> Iterator[Page]:
    """``url`` (an http:// address or a file) open in a headless window, to drive."""
    with _chromium(binary, timeout) as pipe:
        yield Page(pipe, _open_tab(pipe, url, width, height))


def _probe(pipe: _Pipe, url: str, width: int, height: int, full_page: bool) -> PageCheck:
    s = _open_tab(pipe, url, width, height)
    seen = pipe.call("Runtime.evaluate", session=s, expression=PROBE, awaitPromise=True,
                     returnByValue=True)
    if "exceptionDetails" in seen:
        raise RuntimeError(f"the probe failed: {seen['exceptionDetails']}")
    value = seen["result"]["value"]
    clip = {}
    if full_page:
        size = pipe.call("Page.getLayoutMetrics", session=s)["cssContentSize"]
        clip = {"clip": {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1},
                "captureBeyondViewport": True}
    shot = pipe.call("Page.captureScreenshot", session=s, format="png", **clip)["data"]
    failed = [f"failed load: {e['params'].get('errorText')}" for e in pipe.events
              if e.get("method") == "Network.loadingFailed"]
    return PageCheck(value["imgs"], value["charts"], value["pageWidth"], value["viewWidth"],
                     value["title"], base64.b64decode(shot), _errors(pipe.events) + failed)
