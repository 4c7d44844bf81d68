"""The browser side of the live demo: one 127.0.0.1 port serving the page and its WebSocket.

The page (``static/``) opens ``/ws``. The server streams the newest matted frame to it as JPEG,
rendered with that page's own background choice, plus a stats message twice a second; the page
sends back its settings as JSON and, in browser-camera mode, its own camera frames as JPEG, which go
into the engine exactly like frames from a local camera. asyncio runs in its own thread so that the
caller's thread stays free for the run's clock and for Ctrl-C.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import threading
import time
from importlib import resources

import cv2
import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from birefnet.errors import ConfigError
from pipeline.webcam.engine import Engine, MattedFrame
from pipeline.webcam.render import BACKGROUNDS, View, render

log = logging.getLogger("birefnet_video")

STATS_INTERVAL_S = 0.5
JPEG_QUALITY = 85
MAX_UPLOAD_BYTES = 8 * 2**20  # one browser camera frame as JPEG; far above 1080p at the page's quality

STATIC_FILES = {  # url path -> (file under static/, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
}


def encode_jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray | None:
    """The browser's frame as RGB uint8, or None when it is not a decodable image."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class WebServer:
    """Serves the demo page and its WebSocket on ``host:port`` until ``stop()``.

    ``browser_camera``: the page may send its own camera frames (the run was started with
    ``--source browser``); only one page at a time may do so, so frames of two cameras never mix.
    """

    def __init__(self, engine: Engine, view: View, host: str = "127.0.0.1", port: int = 8765,
                 browser_camera: bool = False, source_name: str = "") -> None:
        self.engine = engine
        self.view = view
        self.host = host
        self.port = port
        self.browser_camera = browser_camera
        self.source_name = source_name
        self._camera_owner: ServerConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._bind_error: OSError | None = None
        self.malformed_messages = 0  # commands that were not a JSON object: ignored, logged once
        self._thread = threading.Thread(target=self._serve_in_thread, name="webcam-web", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> WebServer:
        """Bind and serve; a port already in use is a ConfigError with one clear line."""
        self._thread.start()
        self._ready.wait()
        if self._bind_error is not None:
            self._thread.join()
            exc = self._bind_error
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {self.port} on {self.host} is already in use; choose another with --port")
            raise ConfigError(f"cannot serve on {self.host}:{self.port}: {exc.strerror or exc}")
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():  # never started, or failed to bind
            return
        assert self._loop is not None and self._stopped is not None  # set by the running thread
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join()

    # -- server thread -----------------------------------------------------------------------------

    def _serve_in_thread(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            server = await serve(self._connection, self.host, self.port, process_request=self._http,
                                 compression=None, max_size=MAX_UPLOAD_BYTES)
        except OSError as exc:
            self._bind_error = exc
            self._ready.set()
            return
        if self.port == 0:  # tests ask for any free port
            self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopped.wait()

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        """Plain HTTP requests get the page or its config; ``/ws`` goes on to the WebSocket handshake."""
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            return None
        if path == "/config.json":
            return _response(200, json.dumps(self._config()).encode(), "application/json")
        if path in STATIC_FILES:
            name, content_type = STATIC_FILES[path]
            body = resources.files("pipeline.webcam").joinpath("static", name).read_bytes()
            return _response(200, body, content_type)
        return _response(404, b"not found\n", "text/plain; charset=utf-8")

    def _config(self) -> dict:
        return {
            "backgrounds": list(BACKGROUNDS),
            "background": self.view.background,
            "smoothing": self.engine.smoothing,
            "smoothing_available": self.engine.smoother is not None,
            "browser_camera": self.browser_camera,
            "source": self.source_name,
        }

    async def _connection(self, ws: ServerConnection) -> None:
        view = self.view.copy()
        sender = asyncio.create_task(self._send_results(ws, view))
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    await self._camera_frame(ws, message)
                else:
                    await self._command(ws, view, message)
        except ConnectionClosed:
            pass
        finally:
            if self._camera_owner is ws:
                self._camera_owner = None
            sender.cancel()

    async def _command(self, ws: ServerConnection, view: View, text: str) -> None:
        try:
            command = json.loads(text)
        except json.JSONDecodeError:
            command = None
        if not isinstance(command, dict):
            self.malformed_messages += 1
            if self.malformed_messages == 1:
                log.warning("ignoring a WebSocket message that is not a JSON object (further ones are counted)")
            return await _send_json(ws, {"type": "error", "message": "expected a JSON object"})
        if command.get("background") in BACKGROUNDS:
            view.background = command["background"]
        if "smoothing" in command:
            self.engine.smoothing = bool(command["smoothing"])
        if command.get("camera"):
            if not self.browser_camera:
                return await _send_json(ws, {"type": "error", "message":
                                             f"this server mattes {self.source_name}; start it with "
                                             "--source browser to matte the browser's camera"})
            if self._camera_owner not in (None, ws):
                return await _send_json(ws, {"type": "error", "message": "another page is already sending its camera"})
            self._camera_owner = ws

    async def _camera_frame(self, ws: ServerConnection, data: bytes) -> None:
        if self._camera_owner is not ws:
            return
        captured_at = time.perf_counter()  # the browser's clock is not ours: latency starts on arrival
        image = await asyncio.to_thread(decode_jpeg, data)
        if image is None:
            return await _send_json(ws, {"type": "error", "message": "camera frame is not a JPEG image"})
        self.engine.submit(image, captured_at)

    async def _send_results(self, ws: ServerConnection, view: View) -> None:
        sequence, next_stats = 0, 0.0
        try:
            while True:
                taken = await asyncio.to_thread(self.engine.results.take, sequence, STATS_INTERVAL_S)
                if taken is not None:
                    sequence, result = taken
                    await ws.send(await asyncio.to_thread(_render_jpeg, result, view))
                    self.engine.mark_shown(result)
                elif self.engine.results.closed:
                    return
                if time.perf_counter() >= next_stats:
                    next_stats = time.perf_counter() + STATS_INTERVAL_S
                    await _send_json(ws, {"type": "stats", "smoothing": self.engine.smoothing,
                                          **self.engine.live_stats()})
        except ConnectionClosed:
            pass


def _render_jpeg(result: MattedFrame, view: View) -> bytes:
    return encode_jpeg(render(result.frame.image, result.alpha, view))


async def _send_json(ws: ServerConnection, message: dict) -> None:
    await ws.send(json.dumps(message))


def _response(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store")])
    reason = {200: "OK", 404: "Not Found"}[status]
    return Response(status, reason, headers, body)
