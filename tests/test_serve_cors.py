"""CORS in `matte serve` (issue 24 item 7): off by default, and ``--cors-origin`` lets exactly the listed
origins call the API. A real server in a subprocess, real HTTP from here."""

from __future__ import annotations

import http.client
import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import child_env
from PIL import Image

pytest.importorskip("starlette", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

ALLOWED = "https://editor.example"
OTHER = "https://elsewhere.example"


class Server:
    def __init__(self, tmp_path: Path, weights: Path, *args: str) -> None:
        self.log = tmp_path / "serve.log"
        command = [
            sys.executable,
            "-m",
            "mattecli",
            "serve",
            "--port",
            "0",
            "--device",
            "cpu",
            "-m",
            str(weights),
        ]
        self.process = subprocess.Popen(
            [*command, *args],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=child_env(PYTHONUNBUFFERED="1"),
            cwd=tmp_path,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("serving on http://127.0.0.1:"):
                    self.port = int(line.split(":")[2].split("/")[0])
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"matte serve did not start:\n{self.log.read_text(errors='replace')}")

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


def _upload() -> tuple[bytes, str]:
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(buffer, format="PNG")
    boundary = "cors-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + buffer.getvalue()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }


def test_cors_is_off_by_default(tmp_path: Path, tiny_weights: Path) -> None:
    server = Server(tmp_path, tiny_weights)
    try:
        status, headers, _ = server.request("GET", "/healthz", {"Origin": OTHER})
        assert status == 200 and "access-control-allow-origin" not in headers
        status, headers, _ = server.request("OPTIONS", "/v1/matte", _preflight(OTHER))
        assert status != 200 and not [name for name in headers if name.startswith("access-control-")]
        body, content_type = _upload()
        status, headers, _ = server.request(
            "POST", "/v1/matte", {"Origin": OTHER, "Content-Type": content_type}, body
        )
        assert status == 200 and "access-control-allow-origin" not in headers  # a browser would refuse it
    finally:
        server.stop()


def test_cors_origin_allows_exactly_the_listed_origin(tmp_path: Path, tiny_weights: Path) -> None:
    server = Server(tmp_path, tiny_weights, "--cors-origin", ALLOWED)
    try:
        status, headers, _ = server.request("OPTIONS", "/v1/matte", _preflight(ALLOWED))
        assert status == 200
        assert headers["access-control-allow-origin"] == ALLOWED
        assert "POST" in headers["access-control-allow-methods"]
        assert "content-type" in headers["access-control-allow-headers"].lower()
        body, content_type = _upload()
        status, headers, answer = server.request(
            "POST", "/v1/matte", {"Origin": ALLOWED, "Content-Type": content_type}, body
        )
        assert status == 200 and answer.startswith(b"\x89PNG")
        assert headers["access-control-allow-origin"] == ALLOWED
        assert "Content-Disposition" in headers["access-control-expose-headers"]
        # Another origin: its preflight is refused and simple requests carry no permission.
        status, headers, _ = server.request("OPTIONS", "/v1/matte", _preflight(OTHER))
        assert status == 400 and "access-control-allow-origin" not in headers
        status, headers, _ = server.request("GET", "/healthz", {"Origin": OTHER})
        assert status == 200 and "access-control-allow-origin" not in headers
    finally:
        server.stop()
