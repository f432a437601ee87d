"""`matte serve` end to end: the real server in a subprocess on a free loopback port, a tiny fitted model, and
real HTTP from here (http.client and raw sockets). Needs the serve extra (the test extra pulls it in)."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import SERVE_WITHOUT_WEB_STACK, synthetic_scene, trained_tiny_net
from PIL import Image

pytest.importorskip("starlette", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

MB = 1024 * 1024
TIMEOUT_S = 6  # the test server's --timeout
QUEUE = 4  # the test server's --queue-size


# -- a server ---------------------------------------------------------------------------------------------


class Server:
    """``matte serve`` in a subprocess; its output goes to a file (a pipe would fill up and block it)."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mattecli", "serve", "--port", "0", "--device", "cpu", *args],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.port = self._wait_for_port()

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = self.output()
            for line in text.splitlines():
                if line.startswith("serving on http://127.0.0.1:"):
                    return int(line.split(":")[2].split("/")[0])
            if self.process.poll() is not None:
                raise AssertionError(f"matte serve exited {self.process.returncode}:\n{text}")
            time.sleep(0.1)
        raise AssertionError(f"matte serve did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, headers, body) of one request on a fresh connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def post_form(self, data: bytes, filename: str = "scene.png", path: str = "/v1/matte", **fields: str):
        body, content_type = multipart(data, filename, fields)
        return self.request("POST", path, body, {"Content-Type": content_type})

    def health(self) -> dict:
        return json.loads(self.request("GET", "/healthz")[2])


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    import torch

    from mattecli.modelfiles.weights import save_weights

    torch.set_num_threads(1)  # module fixtures run before conftest's per-test one-thread fixture
    return save_weights(trained_tiny_net(), tmp_path_factory.mktemp("model") / "tiny.safetensors", {})


@pytest.fixture(scope="module")
def server(weights: Path, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    running = Server(
        log,
        "--model", str(weights),
        "--max-upload-mb", "1",
        "--max-megapixels", "1",
        "--queue-size", str(QUEUE),
        "--batch-size", "4",  # so that concurrent requests of one size share model calls
        "--timeout", str(TIMEOUT_S),
    )  # fmt: skip
    yield running
    running.stop()


@pytest.fixture(scope="module")
def reference(weights: Path):
    """The same model in this process: what the server must answer."""
    from mattecli.inference import Matter

    return Matter(model=weights, device="cpu")


# -- helpers ----------------------------------------------------------------------------------------------


def multipart(data: bytes, filename: str, fields: dict[str, str], field: str = "image") -> tuple[bytes, str]:
    boundary = "matte-test-boundary-7c1f"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def encoded(pixels: np.ndarray, format_name: str = "PNG", **save) -> bytes:
    stream = io.BytesIO()
    Image.fromarray(pixels).save(stream, format=format_name, **save)
    return stream.getvalue()


def scene(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    image, _ = synthetic_scene(height, width, seed=seed)
    return (image * 255 + 0.5).astype(np.uint8)


def picture(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def expected_alpha(reference, pixels: np.ndarray) -> np.ndarray:
    return np.rint(reference.matte(pixels, decontaminate=False).alpha * 255).astype(int)


def assert_json_error(status: int, headers: dict, body: bytes, expected_status: int, words: str) -> str:
    assert status == expected_status, (status, body[:300])
    assert headers["content-type"] == "application/json"
    message = json.loads(body)["error"]
    assert words in message, message
    assert "Traceback" not in message and "\n" not in message
    return message


def raw_request(port: int, head: str, body: bytes = b"") -> socket.socket:
    """A connection that has sent ``head`` (request line and headers) and ``body``, and stays open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.encode() + b"\r\n" + body)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


# -- images in, images out --------------------------------------------------------------------------------


def test_cutout_png_is_the_models_matte(server: Server, reference) -> None:
    pixels = scene()
    status, headers, body = server.post_form(encoded(pixels), "scene.png")
    assert status == 200, body[:300]
    assert headers["content-type"] == "image/png"
    assert headers["content-disposition"] == 'inline; filename="scene.matte.png"'
    cutout = picture(body)
    assert cutout.mode == "RGBA" and cutout.size == (128, 96)
    rgba = np.asarray(cutout).astype(int)
    # The fitted model's cut-out (decontaminated), computed here in-process: the server runs the same network.
    assert np.abs(rgba - reference.matte(pixels).rgba().astype(int)).max() <= 1
    # The red rectangle is opaque, the corners transparent.
    assert rgba[48, 64, 3] > 200 and rgba[2, 2, 3] < 60


def test_raw_body_matte_composite_and_formats(server: Server, reference) -> None:
    pixels = scene(80, 112, seed=3)
    jpeg = encoded(pixels, "JPEG", quality=95)
    decoded = np.asarray(picture(jpeg))
    alpha = expected_alpha(reference, decoded)

    status, headers, body = server.request(
        "POST", "/v1/matte?output=matte", jpeg, {"Content-Type": "image/jpeg"}
    )
    assert status == 200 and headers["content-type"] == "image/png"
    assert headers["content-disposition"] == 'inline; filename="upload.alpha.png"'
    matte = picture(body)
    assert matte.mode == "L" and matte.size == (112, 80)
    assert np.abs(np.asarray(matte).astype(int) - alpha).max() <= 1

    query = "/v1/matte?bg=%2300ff00&format=jpg"
    status, headers, body = server.request("POST", query, jpeg, {"Content-Type": "application/octet-stream"})
    assert status == 200 and headers["content-type"] == "image/jpeg"
    composite = np.asarray(picture(body)).astype(int)
    assert composite.shape == (80, 112, 3)
    background = alpha < 3
    assert background.any()
    assert np.abs(composite[background] - [0, 255, 0]).max() <= 12  # green where the matte is clear

    # Options as form fields too, and lossless WebP with alpha.
    status, headers, body = server.post_form(jpeg, "photo.jpg", format="webp", decontaminate="false")
    assert status == 200 and headers["content-type"] == "image/webp"
    assert headers["content-disposition"] == 'inline; filename="photo.matte.webp"'
    webp = np.asarray(picture(body)).astype(int)
    assert webp.shape == (80, 112, 4)
    assert np.abs(webp[..., 3] - alpha).max() <= 1
    # No decontamination: the input's own colours (WebP drops those of fully transparent pixels).
    visible = webp[..., 3] > 0
    assert visible.any() and np.array_equal(webp[..., :3][visible], decoded[visible])


def test_transparent_and_16_bit_uploads(server: Server, reference) -> None:
    """An upload's own transparency is kept (as `matte image` keeps it), and 16-bit PNGs are matted at their
    full precision."""
    import cv2

    pixels = scene()
    rgba = np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])
    rgba[:, :40, 3] = 0
    status, _headers, body = server.post_form(encoded(rgba), "holes.png", output="matte")
    assert status == 200
    matte = np.asarray(picture(body)).astype(int)
    assert matte[:, :40].max() == 0
    assert np.abs(matte[:, 40:] - expected_alpha(reference, pixels)[:, 40:]).max() <= 1

    deep = pixels.astype(np.uint16) * 257 + 100
    png16 = cv2.imencode(".png", np.ascontiguousarray(deep[:, :, ::-1]))[1].tobytes()
    status, headers, body = server.post_form(png16, "deep.png")
    assert status == 200 and headers["content-type"] == "image/png"
    cutout = picture(body)
    assert cutout.mode == "RGBA" and cutout.size == (128, 96)
    assert np.abs(np.asarray(cutout).astype(int) - reference.matte(deep).rgba().astype(int)).max() <= 1


def test_concurrent_requests_all_get_their_own_answer(server: Server, reference) -> None:
    """Twelve clients at once with different images of two sizes (same-size ones may share a batch): each
    answer is the matte of that client's own image. A 503 (queue of 4) is retried, as a client would."""
    images = [scene(64 + 32 * (i % 2), 96, seed=10 + i) for i in range(12)]

    def post(pixels: np.ndarray) -> np.ndarray:
        for _ in range(200):
            status, _headers, body = server.post_form(encoded(pixels), "x.png", output="matte")
            if status != 503:
                assert status == 200, body[:300]
                return np.asarray(picture(body)).astype(int)
            time.sleep(0.05)
        raise AssertionError("still busy after 200 tries")

    before = server.health()
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(post, images))
    for pixels, answer in zip(images, answers, strict=True):
        assert answer.shape == pixels.shape[:2]
        assert np.abs(answer - expected_alpha(reference, pixels)).max() <= 1
    after = server.health()
    assert after["images"] - before["images"] == 12
    assert after["active"] == 0 and after["waiting"] == 0


# -- errors -----------------------------------------------------------------------------------------------


def test_bad_requests_get_json_errors(server: Server) -> None:
    png = encoded(scene(32, 32))
    wrong_field, wrong_type = multipart(png, "a.png", {}, field="photo")
    cases = [
        (server.post_form(b"just some text\n", "notes.png"), 400, "notes.png: not an image"),
        (server.post_form(png[:200], "cut.png"), 400, "cut.png: cannot decode image"),
        (server.post_form(b"", "empty.png"), 400, "empty.png: the upload is empty"),
        (server.post_form(png, "a.png", fromat="png"), 400, "unknown parameter 'fromat'"),
        (server.post_form(png, "a.png", bg="plaid"), 400, "not a colour"),
        (server.post_form(png, "a.png", format="jpg"), 400, "JPEG has no transparency"),
        (server.post_form(png, "a.png", output="matte", bg="white"), 400, "bg= makes a composite"),
        (server.post_form(png, "a.png", output="everything"), 400, "output must be one of"),
        (server.post_form(png, "a.png", decontaminate="maybe"), 400, "decontaminate must be true or false"),
        (server.request("POST", "/v1/matte", wrong_field, {"Content-Type": wrong_type}), 400,
         "no file in the form field 'image' (the form has a file in 'photo')"),
        (server.request("POST", "/v1/matte", b"{}", {"Content-Type": "application/json"}), 415,
         "Content-Type application/json is not accepted"),
        (server.post_form(encoded(scene(16, 16), "GIF"), "anim.gif"), 415, "anim.gif: GIF images are not supported"),
        (server.request("GET", "/v1/matte"), 405, "GET is not allowed on /v1/matte"),
        (server.request("GET", "/v2/anything"), 404, "not found: /v2/anything"),
        (server.request("GET", "/static/../app.py"), 404, "not found"),
        (server.request("GET", "/healthz", headers={"Host": "attacker.example:7860"}), 400,
         "not 'attacker.example'"),
    ]  # fmt: skip
    for (status, headers, body), expected_status, words in cases:
        assert_json_error(status, headers, body, expected_status, words)


def test_malformed_http_gets_json_errors_too(server: Server) -> None:
    """Requests that h11 cannot parse are answered by the connection layer, before the app: in JSON as
    well, with h11's status (uvicorn alone answers them in plain text)."""
    cases = [
        ("Content-Length: 12abc\r\n", 400, "bad HTTP request: bad Content-Length"),
        ("Content-Length: 5\r\nContent-Length: 7\r\n", 400, "conflicting Content-Length headers"),
        ("Transfer-Encoding: gzip\r\n", 501, "Only Transfer-Encoding: chunked is supported"),
        ("X-Big: " + "a" * 17000, 431, "the request line and headers are over 16 KiB"),
        ("Bad Header\r\n", 400, "bad HTTP request: illegal header line"),
    ]
    for extra, expected_status, words in cases:
        sock = raw_request(server.port, "POST /v1/matte HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra)
        with sock:
            status, headers, body = read_response(sock)
        message = assert_json_error(status, headers, body, expected_status, words)
        assert "bytearray" not in message
    assert server.health()["status"] == "ok"


def test_too_many_pixels_is_413_before_decoding(server: Server) -> None:
    # 1200 x 1000 = 1.2 MP of one colour: a few kB of PNG, over the server's 1 MP.
    flat = np.zeros((1000, 1200, 3), np.uint8)
    status, headers, body = server.post_form(encoded(flat), "big.png")
    message = assert_json_error(status, headers, body, 413, "big.png: the image is 1200 x 1000 = 1.2 MP")
    assert "at most 1 MP" in message


def test_upload_over_the_limit_is_413(server: Server) -> None:
    """A declared Content-Length over the limit (1 MB here) is refused before any of the body is read: the
    client sent only headers. An ordinary client that sends the whole body first still gets the answer."""
    sock = raw_request(
        server.port,
        "POST /v1/matte HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        f"Content-Length: {1024 * MB}\r\n",
    )
    with sock:
        status, headers, body = read_response(sock)
    assert_json_error(status, headers, body, 413, "larger than this server's limit of 1 MB")

    status, headers, body = server.request(
        "POST", "/v1/matte", b"\0" * (2 * MB), {"Content-Type": "image/png"}
    )
    assert_json_error(status, headers, body, 413, "larger than this server's limit of 1 MB")


def test_streamed_upload_over_the_limit_is_cut_off(server: Server) -> None:
    """Without a Content-Length (chunked), the server counts the bytes as they stream and answers 413 once
    they pass the limit: long before the 64 MB this client would send."""
    sock = raw_request(
        server.port,
        "POST /v1/matte HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        "Transfer-Encoding: chunked\r\n",
    )
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"\x89" * 64 * 1024)
    sent = 0
    with sock:
        sock.settimeout(0.05)
        answer = b""
        while sent < 64 * MB and b"\r\n\r\n" not in answer:
            try:
                sock.sendall(chunk)
                sent += 64 * 1024
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass
            with contextlib.suppress(TimeoutError, BlockingIOError):
                answer += sock.recv(65536)
        sock.settimeout(10)
        while not answer.endswith(b"}"):
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"larger than this server's limit of 1 MB" in body
    # Answered after about the limit (plus what socket buffers hold), nowhere near the whole upload.
    assert sent < 8 * MB, sent
    assert server.health()["status"] == "ok"


def test_full_queue_is_503_and_slow_uploads_time_out(server: Server) -> None:
    """Four uploads that stall half-way hold the server's four places: the fifth request is refused at once
    (503). Two of the stalled ones then finish and get their cut-outs; the other two get 408 after the
    server's --timeout."""
    png = encoded(scene())
    half = len(png) // 2
    head = (
        "POST /v1/matte HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(png)}\r\n"
    )
    held = [raw_request(server.port, head, png[:half]) for _ in range(QUEUE)]
    try:
        deadline = time.monotonic() + 10
        while server.health()["active"] < QUEUE:
            assert time.monotonic() < deadline, server.health()
            time.sleep(0.02)
        started = time.monotonic()
        status, headers, body = server.post_form(png, "one-too-many.png")
        assert time.monotonic() - started < 2
        assert_json_error(status, headers, body, 503, "server busy")
        assert headers["retry-after"] == "1"

        for sock in held[:2]:
            sock.sendall(png[half:])
            status, headers, body = read_response(sock)
            assert status == 200 and picture(body).size == (128, 96)
        for sock in held[2:]:
            status, headers, body = read_response(sock)
            assert_json_error(status, headers, body, 408, f"the upload did not arrive within {TIMEOUT_S} s")
        assert time.monotonic() - started < TIMEOUT_S + 5
    finally:
        for sock in held:
            sock.close()
    assert server.health()["active"] == 0
    assert server.post_form(png)[0] == 200


# -- the other endpoints and the page ---------------------------------------------------------------------


def test_models_and_health(server: Server) -> None:
    status, _headers, body = server.request("GET", "/v1/models")
    assert status == 200
    assert json.loads(body) == {
        "models": [
            {
                "id": "tiny",
                "config": "tiny",
                "max_size": 64,
                "device": "cpu",
                "precision": "fp32",
                "tta": False,
            }
        ]
    }
    health = server.health()
    assert health["status"] == "ok" and health["queue_size"] == QUEUE
    # The server measures its own speed at start (two synthetic images through the model).
    deadline = time.monotonic() + 30
    while not server.health()["cost"]["measured"]:
        assert time.monotonic() < deadline, server.health()
        time.sleep(0.1)
    cost = server.health()["cost"]
    assert 0 < cost["fixed_s"] < 5 and cost["fits_mp"] > 1


def test_page_is_served_from_the_package(server: Server) -> None:
    status, headers, body = server.request("GET", "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert '<input type="file" id="files"' in page and "/static/app.js" in page
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    for name, media in (("app.js", "text/javascript"), ("style.css", "text/css")):
        status, headers, body = server.request("GET", f"/static/{name}")
        assert status == 200 and headers["content-type"].startswith(media) and len(body) > 1000
        # Nothing on the page comes from anywhere but this server.
        assert b"http://" not in body and b"https://" not in body and b"//cdn" not in body
    assert b"http://" not in page.encode() and b"https://" not in page.encode()


# -- the command line -------------------------------------------------------------------------------------


def test_port_in_use_is_one_line_and_sigterm_stops(weights: Path, tmp_path: Path) -> None:
    first = Server(tmp_path / "first.log", "--model", str(weights), "--quiet")
    try:
        second = subprocess.run(
            [sys.executable, "-m", "mattecli", "serve", "--port", str(first.port), "--model", str(weights)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"error: cannot listen on 127.0.0.1:{first.port} (Address already in use); pick another --port"
        )
        assert first.request("GET", "/healthz")[0] == 200
    finally:
        code = first.stop(signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, first.output()
    assert "Traceback" not in first.output() and "stopped by SIGTERM" in first.output()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--queue-size", "0", "--queue-size must be at least 1, got 0"),
        ("--max-upload-mb", "0", "--max-upload-mb must be positive, got 0"),
        ("--timeout", "-1", "--timeout must be positive, got -1"),
        ("--port", "70000", "--port must be between 0 and 65535, got 70000"),
    ],
)
def test_bad_options_are_one_line(option: str, value: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mattecli", "serve", option, value], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and result.stderr.strip() == f"error: {message}"


def test_without_the_extra_it_says_how_to_install_it() -> None:
    """The base install has no web stack: `matte serve` says in one line what to install."""
    result = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_WEB_STACK], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: matte serve needs the web server extra: "
        f"{sys.executable} -m pip install 'starlette>=0.40' 'uvicorn>=0.55' 'python-multipart>=0.0.13'"
    )


# -- the pieces, in-process -------------------------------------------------------------------------------


def test_worker_batches_waiting_images_of_one_size(reference) -> None:
    """Images that wait together go through the network in batches of one size; each gets its own matte,
    the same as alone; a 16-bit image (not batchable) and a cancelled one are handled on their own."""
    from mattecli.serve.worker import ModelWorker, QueueFull

    worker = ModelWorker(reference, max_batch=3, max_pending=8)
    small = [scene(64, 96, seed=s) for s in range(4)]
    large = scene(96, 128, seed=9)
    unbatchable = small[3].astype(np.float32) / 255
    futures = [worker.submit(small[0]), worker.submit(large), worker.submit(small[1])]
    futures += [worker.submit(small[2]), worker.submit(unbatchable, batchable=False)]
    cancelled = worker.submit(small[0])
    assert cancelled.cancel()
    for _ in range(2):
        worker.submit(large)
    with pytest.raises(QueueFull):
        worker.submit(large)
    worker.start()  # everything above is waiting: batches [s0 s1 s2] [large large large] [s3]
    try:
        alphas = [future.result(30) for future in futures]
    finally:
        worker.stop()
    for image, alpha in zip([small[0], large, small[1], small[2], unbatchable], alphas, strict=True):
        assert np.abs(alpha - reference.predict_alpha(image)).max() < 1e-4
    assert (worker.calls, worker.images) == (3, 7)
    assert not worker.alive


def test_batches_only_off_the_cpu() -> None:
    import torch

    from mattecli.cli.serve import default_batch_size

    assert default_batch_size(torch.device("cpu")) == 1
    assert default_batch_size(torch.device("cuda", 0)) == 4


def test_options_and_download_names() -> None:
    from mattecli.errors import MatteError
    from mattecli.serve.render import RenderOptions, parse_options

    assert parse_options([]) == RenderOptions()
    composite = parse_options([("bg", "#ff0000"), ("format", "JPEG")])
    assert composite.output == "composite" and composite.background == (1.0, 0.0, 0.0)
    assert composite.media_type == "image/jpeg" and composite.suffix == ".jpg"
    assert parse_options([("output", "composite")]).background == (1.0, 1.0, 1.0)
    assert parse_options([("decontaminate", "on")]).decontaminate is True
    assert parse_options([("decontaminate", "0")]).decontaminate is False
    with pytest.raises(MatteError, match="bg= makes a composite"):
        parse_options([("output", "cutout"), ("bg", "white")])
    matte = RenderOptions(output="matte")
    assert matte.filename("../../etc/passwd") == "passwd.alpha.png"
    assert RenderOptions().filename('holiday "best".final.jpg') == "holiday_best_.final.matte.png"
    assert RenderOptions().filename("C:\\Users\\me\\.hidden") == "hidden.matte.png"
    assert RenderOptions().filename("") == "image.matte.png"


def test_downloads_are_named_and_typed_from_the_image_tables() -> None:
    """A download carries the tag ``matte image`` gives that kind of output (so a later ``matte image``
    over the downloads folder skips it as its own output) and the media type of its suffix."""
    from mattecli.photo.outputs import OUTPUT_TAGS, is_own_output
    from mattecli.serve.render import KINDS, RenderOptions

    expected = {
        ("cutout", "png"): ("photo.matte.png", "image/png"),
        ("cutout", "webp"): ("photo.matte.webp", "image/webp"),
        ("matte", "jpeg"): ("photo.alpha.jpg", "image/jpeg"),
        ("composite", "jpg"): ("photo.composite.jpg", "image/jpeg"),
    }
    for (output, format_name), (name, media_type) in expected.items():
        options = RenderOptions(output=output, format=format_name)
        assert (options.filename("photo.jpg"), options.media_type) == (name, media_type)
        assert is_own_output(Path(name)) and OUTPUT_TAGS[KINDS[output]] in name
