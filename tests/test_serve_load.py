"""`matte serve` under load: clients that give up, slow headers, and admission by cost. A real uvicorn server
(the command's own settings, :func:`mattecli.serve.protocol.uvicorn_config`) in a thread on a free loopback
port, in front of a stand-in model whose speed the test sets, so that timing is the test's to choose."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
from types import SimpleNamespace

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


def loose_costs(**settings):
    from mattecli.serve.admission import CostModel

    return {"calibrate": False, "cost": CostModel(fixed=0.01, per_mp=0.01, per_tile=0.0), **settings}


# -- clients that give up -----------------------------------------------------------------------------------


def test_work_for_a_client_that_left_is_dropped() -> None:
    """A 10 s image whose client hangs up stops at its next tile; one queued behind it whose client also
    left never starts; the next request is answered at once instead of after both (20 s)."""
    model = SlowModel(seconds_per_mp=20.0)  # 0.5 MP: 100 tiles of 0.1 s
    server = LiveServer(model, **loose_costs(timeout=30, max_pixels=4_000_000))
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
        assert model.started[0]["tiles"] < model.started[0]["total"] / 2, model.started[0]
        health = server.health()
        assert health["abandoned"] == 2 and health["active"] == 0 and health["waiting"] == 0
        assert health["backlog_s"] == 0
    finally:
        server.stop()


# -- slow headers -------------------------------------------------------------------------------------------


def test_slow_headers_are_answered_408_and_closed() -> None:
    """Connections that dribble their headers a byte at a time get a JSON 408 and are closed at the header
    deadline; one that sends nothing is closed; a slow upload after complete headers is not cut off by it."""
    server = LiveServer(SlowModel(seconds_per_mp=0.1), **loose_costs(timeout=20, header_timeout=1.0))
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


# -- admission by cost --------------------------------------------------------------------------------------


def test_requests_that_cannot_finish_in_time_are_refused_at_once() -> None:
    """With 2 s per MP and a 3 s timeout: a 2 MP image is refused (413) before any work, a second 1 MP image
    while one is being matted gets 503 at once with Retry-After, and nothing waits for the timeout."""
    from mattecli.serve.admission import CostModel

    model = SlowModel(seconds_per_mp=2.0)
    server = LiveServer(
        model,
        calibrate=False,
        cost=CostModel(fixed=0.05, per_mp=2.0, per_tile=0.0),
        timeout=3,
        max_pixels=4_000_000,
    )
    try:
        started = time.monotonic()
        status, headers, body = server.post_image(png(2000, 1000))
        assert time.monotonic() - started < 1
        message = json_error(status, headers, body, 413, "a 2.0 MP image takes about 4 s on this server")
        assert "too long for its 3 s timeout; it takes images up to about 1.1 MP" in message
        assert model.started == []

        one_mp = png(1000, 1000)
        first = server.open_post(one_mp)
        wait_for(lambda: len(model.started) == 1, what="the first image to start")
        started = time.monotonic()
        status, headers, body = server.post_image(one_mp)
        assert time.monotonic() - started < 1
        json_error(status, headers, body, 503, "server busy: the requests ahead need about 2 s more")
        assert 1 <= int(headers["retry-after"]) <= 3
        with first:
            status, _headers, _body = read_response(first)
        assert status == 200
        assert len(model.started) == 1
        assert server.post_image(one_mp)[0] == 200  # the queue is empty again
    finally:
        server.stop()


def test_admission_arithmetic() -> None:
    from mattecli.serve.admission import HEADROOM, Admission, CostModel, Measurement
    from mattecli.serve.requests import ApiError

    assert HEADROOM == 0.75  # of the 20 s timeout below, 15 s are given out
    now = [0.0]
    admission = Admission(20.0, CostModel(fixed=1.0, per_mp=2.0, per_tile=0.0), clock=lambda: now[0])
    assert admission.estimate(2.0) == 5.0 and admission.fitting_megapixels() == 7.0
    first = admission.admit("a", 2.0, 0, 20.0)
    second = admission.admit("b", 2.0, 0, 20.0)
    with pytest.raises(ApiError) as refused:
        admission.admit("c", 3.0, 0, 20.0)  # 10 s ahead + 7 s > 15 s
    assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "2"}
    with pytest.raises(ApiError) as refused:
        admission.admit("c", 1.0, 0, 12.0)  # 10 s ahead + 3 s, but it spent 8 s uploading
    assert refused.value.status == 503
    third = admission.admit("d", 2.0, 0, 20.0)  # 10 s ahead + 5 s: just in
    assert admission.backlog() == 15.0
    with pytest.raises(ApiError) as refused:
        admission.check_arrival()  # 15 s ahead: not even a tiny image fits
    assert refused.value.status == 503
    with pytest.raises(ApiError) as refused:
        admission.admit("huge", 8.0, 0, 20.0)
    assert refused.value.status == 413
    assert "huge: a 8.0 MP image takes about 17 s on this server" in str(refused.value)
    assert "it takes images up to about 7.0 MP" in str(refused.value)

    now[0] = 4.0  # the first has been served 4 of its 5 s
    assert admission.backlog() == 11.0
    admission.release(first, seconds=2.5)  # twice as fast as estimated: later estimates shrink
    assert admission.correction == pytest.approx(0.5**0.4)
    assert admission.backlog() == pytest.approx(10.0)  # the others' estimates were made before
    admission.release(second, seconds=None, finished=False)
    admission.release(third, seconds=1.0, finished=False)  # gave up early: no lower bound learned
    assert admission.backlog() == 0.0 and admission.admitted == 0 and admission.learned == 1
    # Tiles count as the model's own cost.
    assert Admission(20.0, CostModel(1.0, 0.5, 6.0)).estimate(2.0, tiles=4) == 26.0

    # Calibration: 0.2 MP in 1 s; 1.6 MP with 2 refinement tiles in 15 s, 1.6 s of it rendering.
    admission.calibrate(CostModel.fitted(Measurement(0.2, 0, 1.0, 0.1), Measurement(1.6, 2, 15.0, 1.6)))
    assert admission.correction == 1.0 and admission.calibrated
    cost = admission.cost
    assert (cost.fixed, cost.per_mp, cost.per_tile) == pytest.approx((0.8, 1.0, 6.3))
    # Without refinement the network's extra time goes to the pixels.
    assert CostModel.fitted(
        Measurement(0.2, 0, 1.0, 0.1), Measurement(1.6, 0, 2.6, 1.6)
    ).per_mp == pytest.approx(1.125)


def test_an_image_whose_turn_comes_too_late_is_not_started() -> None:
    """The worker does not start an image that can no longer make its deadline: its caller hears at once."""
    from mattecli.serve.worker import ModelWorker, TooLate

    model = SlowModel(seconds_per_mp=1.0)
    worker = ModelWorker(model, max_batch=1)
    worker.start()
    try:
        image = np.zeros((100, 100, 3), np.uint8)
        late = worker.submit(image, deadline=time.monotonic() + 1.0, seconds=5.0)
        with pytest.raises(TooLate, match="it would need 5 s and has 1 s"):
            late.result(10)
        assert model.started == []
        assert worker.submit(image, deadline=time.monotonic() + 5.0, seconds=1.0).result(10).shape == (
            100,
            100,
        )
    finally:
        worker.stop()


def test_refinement_tiles_follow_the_model() -> None:
    from mattecli.serve.admission import refinement_tiles, tiles_per_megapixel

    matter = SimpleNamespace(max_size=512, tile_size=1024, tile_overlap=128, refine=None)
    assert refinement_tiles(matter, 1024, 768) == 0  # not refined: within twice the working size
    assert refinement_tiles(matter, 1536, 1024) == 2
    assert refinement_tiles(matter, 7745, 5164) == 54
    assert tiles_per_megapixel(matter) == pytest.approx(1.2456, abs=1e-4)
    assert (
        refinement_tiles(
            SimpleNamespace(max_size=512, tile_size=1024, tile_overlap=128, refine=False), 7745, 5164
        )
        == 0
    )
    assert refinement_tiles(SlowModel(1.0), 7745, 5164) == 0  # no tiled refinement at all
