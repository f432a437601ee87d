"""`matte serve` under load: clients that give up, slow headers. A real uvicorn server
(the command's own settings, :func:`mattecli.serve.protocol.uvicorn_config`) in a thread on a free loopback
port, in front of a stand-in model whose speed the test sets, so that timing is the test's to choose."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")


class SlowModel:
    """Stands in for :class:`~mattecli.inference.Matter`: ``seconds_per_mp`` per megapixel, slept in tiles of
    ``tile_seconds`` with ``on_tile`` called after each, as full-resolution refinement calls it."""

    max_size = 64

    def __init__(self, seconds_per_mp: float, tile_seconds: float = 0.1) -> None:
        self.seconds_per_mp = seconds_per_mp
        self.tile_seconds = tile_seconds
        self.started: list[dict] = []  # one record per image the network started on

    def predict_alpha(self, rgb: np.ndarray, *, on_tile=None) -> np.ndarray:
        height, width = rgb.shape[:2]
        total = max(1, round(height * width / 1e6 * self.seconds_per_mp / self.tile_seconds))
        record = {"size": (width, height), "tiles": 0, "total": total}
        self.started.append(record)
        for done in range(1, total + 1):
            time.sleep(self.tile_seconds)
            record["tiles"] = done
            if on_tile is not None:
                on_tile(done, total)
        return np.full((height, width), 0.5, np.float32)


class LiveServer:
    """``create_app`` under uvicorn, configured as ``matte serve`` configures it, in a background thread."""

    def __init__(self, model, **settings) -> None:
        import uvicorn

        from mattecli.serve.app import ServeSettings, create_app
        from mattecli.serve.protocol import uvicorn_config

        self.settings = ServeSettings(**settings)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        config = uvicorn_config(create_app(model, self.settings), self.settings, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.listener]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.listener.close()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def post_image(self, data: bytes):
        return self.request("POST", "/v1/matte?output=matte", data, {"Content-Type": "image/png"})

    def health(self) -> dict:
        return json.loads(self.request("GET", "/healthz")[2])

    def open_post(self, data: bytes) -> socket.socket:
        """A connection that has sent a whole image request and is waiting for its answer."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        head = (
            "POST /v1/matte?output=matte HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data)
        return sock


def png(width: int, height: int) -> bytes:
    stream = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 128, np.uint8)).save(stream, format="PNG")
    return stream.getvalue()


def wait_for(condition, seconds: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def json_error(status: int, headers: dict, body: bytes, expected: int, words: str) -> str:
    assert status == expected, (status, body[:300])
    assert headers["content-type"] == "application/json"
    message = json.loads(body)["error"]
    assert words in message, message
    return message


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


# -- clients that give up -----------------------------------------------------------------------------------


def test_work_for_a_client_that_left_is_dropped() -> None:
    """A 5 s image whose client hangs up stops at its next tile; one queued behind it whose client also
    left never starts; the next request is answered at once instead of after both (10 s)."""
    model = SlowModel(seconds_per_mp=10.0)  # 0.5 MP: 50 tiles of 0.1 s
    server = LiveServer(model, timeout=30, max_pixels=4_000_000)
    try:
        large = png(1000, 500)
        first = server.open_post(large)
        wait_for(lambda: len(model.started) == 1, what="the first image to start")
        second = server.open_post(large)
        wait_for(lambda: server.health()["waiting"] == 1, what="the second image to queue")
        second.close()
        first.close()
        started = time.monotonic()
        status, _headers, _body = server.post_image(png(64, 64))
        elapsed = time.monotonic() - started
        assert status == 200
        assert elapsed < 2.5, elapsed
        assert [record["size"] for record in model.started] == [(1000, 500), (64, 64)]
        assert model.started[0]["tiles"] < 20, model.started[0]
        health = server.health()
        assert health["abandoned"] == 2 and health["active"] == 0 and health["waiting"] == 0
    finally:
        server.stop()


# -- slow headers -------------------------------------------------------------------------------------------


def test_slow_headers_are_answered_408_and_closed() -> None:
    """Connections that dribble their headers a byte at a time get a JSON 408 and are closed at the header
    deadline; one that sends nothing is closed; a slow upload after complete headers is not cut off by it."""
    server = LiveServer(SlowModel(seconds_per_mp=0.1), timeout=20, header_timeout=1.0)
    try:
        image = png(64, 64)
        slow_body = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        slow_body.sendall(
            b"POST /v1/matte HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            + f"Content-Length: {len(image)}\r\n\r\n".encode()
            + image[:100]
        )
        dribblers = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(20)]
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        for sock in dribblers:
            sock.sendall(b"POST /v1/matte HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            sock.setblocking(False)
        started = time.monotonic()
        answers = {sock: b"" for sock in dribblers}
        closed: set[socket.socket] = set()
        next_byte = started
        while len(closed) < len(dribblers) and time.monotonic() - started < 6:
            for sock in dribblers:
                if sock in closed:
                    continue
                try:
                    while more := sock.recv(65536):
                        answers[sock] += more
                    closed.add(sock)
                except BlockingIOError:
                    pass
            if time.monotonic() >= next_byte:  # one byte at a time, as a slowloris client sends
                next_byte += 0.3
                for sock in dribblers:
                    if not answers[sock]:
                        sock.send(b"a")
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        assert len(closed) == len(dribblers), (
            f"{len(closed)} of {len(dribblers)} closed after {elapsed:.1f} s"
        )
        assert elapsed < 3, elapsed
        for answer in answers.values():
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b"content-type: application/json" in head.lower()
            assert json.loads(body) == {"error": "the request headers did not arrive within 1 s"}
        idle.settimeout(5)
        assert idle.recv(100) == b""  # closed without an answer: it asked nothing

        slow_body.sendall(image[100:])  # after the header deadline: the upload has the request's timeout
        status, _headers, _body = read_response(slow_body)
        assert status == 200
        for sock in [*dribblers, idle, slow_body]:
            sock.close()
        assert server.request("GET", "/healthz")[0] == 200
    finally:
        server.stop()
