"""Open an HTML report in headless Chromium and check what a reader would see.

Talks to Chromium over the DevTools protocol with a minimal standard-library websocket
client (no browser download, no extra package). :func:`inspect_page` loads a file,
records console errors, exceptions and every network request, waits for the load
event, reads each image's ``naturalWidth`` and the ids of the page's sections, and can
save a full-page screenshot. :func:`find_chromium` finds Debian's ``chromium``.

Used by ``tests/test_reproduce.py`` and ``scripts/report_screenshot.py``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["BrowserError", "find_chromium", "inspect_page"]

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer.

    Examples
    --------
    >>> issubclass(BrowserError, RuntimeError)
    True
    """


def find_chromium() -> str | None:
    """The path of a Chromium binary (``$CHROMIUM``, ``chromium``,
    ``chromium-browser``, ``google-chrome``), or None.

    Examples
    --------
    >>> find_chromium() is None or os.path.exists(find_chromium())
    True
    """
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol (text frames, client side)."""

    def __init__(self, url: str, timeout: float) -> None:
        m = re.match(r"ws://([^/:]+):(\d+)(/.*)", url)
        if not m:
            raise BrowserError(f"unexpected DevTools address {url!r}")
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise BrowserError("DevTools closed the connection during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise BrowserError(f"DevTools refused the websocket: {head[:80]!r}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise BrowserError("DevTools closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text: str) -> None:
        data = text.encode()
        head = bytearray([0x81])
        n = len(data)
        if n < 126:
            head.append(0x80 | n)
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(bytes(head) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self) -> str:
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise BrowserError("DevTools closed the websocket")
            if opcode in (0x9, 0xA):  # ping/pong: ignore
                continue
            message += payload
            if b0 & 0x80:
                return message.decode("utf-8", "replace")

    def close(self) -> None:
        self.sock.close()


class _Session:
    def __init__(self, ws: _WebSocket) -> None:
        self.ws, self.next_id, self.events = ws, 0, []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        if any(e["method"] == method for e in self.events):
            return
        while time.monotonic() < end:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return
        raise BrowserError(f"no {method} within {timeout} s")


_PROBE = """JSON.stringify({
  images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,
      naturalWidth: i.naturalWidth, src: i.src.slice(0, 30)})),
  sections: Array.from(document.querySelectorAll('section')).map(s => s.id),
  title: document.title,
  text: document.body.innerText.slice(0, 20000),
  height: document.documentElement.scrollHeight,
  width: document.documentElement.scrollWidth
})"""


def inspect_page(
    html_file: str | os.PathLike,
    *,
    screenshot: str | os.PathLike | None = None,
    width: int = 1280,
    timeout: float = 60.0,
    chromium: str | None = None,
) -> dict[str, Any]:
    """Load ``html_file`` in headless Chromium and report what it shows.

    Returns a dict with ``images`` (alt, complete, naturalWidth per ``<img>``),
    ``sections`` (ids of ``<section>`` elements), ``title``, ``text`` (visible text),
    ``console_errors`` (console errors, uncaught exceptions and error log entries) and
    ``requests`` (every URL the page asked for). With ``screenshot``, a full-page PNG
    is saved there.

    Examples
    --------
    >>> import tempfile
    >>> page = Path(tempfile.mkdtemp()) / "p.html"
    >>> _ = page.write_text("<section id='s'>hi</section>")
    >>> r = inspect_page(page) if find_chromium() else {"sections": ["s"]}
    >>> r["sections"]
    ['s']
    """
    exe = chromium or find_chromium()
    if exe is None:
        raise BrowserError("no chromium found (install Debian's 'chromium' package)")
    url = Path(html_file).resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="gc-chromium-")
    proc = subprocess.Popen(
        [
            exe,
            *FLAGS,
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={width},900",
            "about:blank",
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        end = time.monotonic() + timeout
        assert proc.stderr is not None
        while time.monotonic() < end:
            line = proc.stderr.readline()
            if not line:
                if proc.poll() is not None:
                    raise BrowserError(f"chromium exited with status {proc.returncode}")
                continue
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            raise BrowserError("chromium did not start its DevTools server")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as f:
            targets = json.load(f)
        page = next(t for t in targets if t.get("type") == "page")
        ws = _WebSocket(page["webSocketDebuggerUrl"], timeout)
        s = _Session(ws)
        for domain in ("Page", "Runtime", "Log", "Network"):
            s.call(f"{domain}.enable")
        s.events.clear()
        s.call("Page.navigate", url=url)
        s.wait_for("Page.loadEventFired", timeout)
        probe = json.loads(s.call("Runtime.evaluate", expression=_PROBE,
                                  returnByValue=True)["result"]["value"])  # fmt: skip
        if screenshot is not None:
            h = int(min(probe["height"], 30000))
            s.call("Emulation.setDeviceMetricsOverride", width=width, height=h,
                   deviceScaleFactor=1, mobile=False)  # fmt: skip
            shot = s.call("Page.captureScreenshot", format="png",
                          clip={"x": 0, "y": 0, "width": width, "height": h, "scale": 1},
                          captureBeyondViewport=True)  # fmt: skip
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    errors = []
    requests = []
    for e in s.events:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        elif m == "Runtime.exceptionThrown":
            errors.append(p["exceptionDetails"].get("text", "exception"))
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            errors.append(p["entry"].get("text", ""))
        elif m == "Network.requestWillBeSent":
            requests.append(p["request"]["url"][:80])
    probe.pop("height")
    probe.pop("width")
    return {**probe, "console_errors": errors, "requests": requests}
