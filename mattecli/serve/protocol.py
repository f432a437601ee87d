"""The HTTP connection layer of ``matte serve``: uvicorn's h11 protocol with a deadline for request headers,
and JSON for the errors uvicorn answers itself, before the app sees a request.

- A connection gets ``header_timeout`` seconds for each request's line and headers (from the connection's
  start, or from the end of its previous answer). A client that sends them a byte at a time, or stops
  half-way, is answered 408 and closed then; an idle keep-alive connection is just closed. uvicorn alone
  times out only idle connections: any byte restarts nothing, but stops its keep-alive timer for good.
- A request that is not HTTP (a malformed Content-Length, a header block over 16 KiB, an unsupported
  Transfer-Encoding, a missing Host) gets the JSON ``{"error": ...}`` the API promises, with h11's status
  (400, 431, 501), instead of uvicorn's plain-text "Invalid HTTP request received.".
- WebSocket upgrades are not offered (the app has none): such a request is an ordinary HTTP request.
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

#: Largest request line plus headers (h11's default; the uploads themselves are bodies).
MAX_HEADER_BYTES = 16 * 1024
_EXTRA_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]


def protocol_class(header_timeout: float) -> type[H11Protocol]:
    """The protocol class for uvicorn's ``http=`` setting, with this header deadline."""
    return type("MatteH11Protocol", (MatteH11Protocol,), {"header_timeout": header_timeout})


def uvicorn_config(app, settings, **options):
    """uvicorn's settings for a ``matte serve`` app (the command's and the tests' servers are the same)."""
    import uvicorn

    return uvicorn.Config(
        app,
        http=protocol_class(settings.header_timeout),
        ws="none",
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        server_header=False,
        **options,
    )


class MatteH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus the header deadline and JSON protocol errors (see the module)."""

    header_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._protocol_error: h11.RemoteProtocolError | None = None
        next_event = self.conn.next_event

        def next_event_noting_errors():  # h11's error says what was wrong (uvicorn keeps only its own text)
            try:
                return next_event()
            except h11.RemoteProtocolError as error:
                self._protocol_error = error
                raise

        self.conn.next_event = next_event_noting_errors  # type: ignore[method-assign]
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()  # the next request on this connection gets its own deadline

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._header_deadline_passed)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return  # a request is being read or answered: the app's own timeout covers it
        if self.conn.trailing_data[0]:  # part of a request line or headers came, not all of it
            message = f"the request headers did not arrive within {self.header_timeout:g} s"
            self.transport.write(_raw_json_response(408, message))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        error = self._protocol_error
        status = error.error_status_hint if error is not None else 400
        detail = str(error) if error is not None and str(error) else msg.rstrip(".")
        detail = detail.split(": bytearray(", 1)[0]  # h11 quotes the offending line: not ours to echo
        if status == 431:
            detail = f"the request line and headers are over {MAX_HEADER_BYTES // 1024} KiB"
        body = json.dumps({"error": f"bad HTTP request: {detail}"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *_EXTRA_HEADERS,
        ]
        try:
            output = self.conn.send(
                h11.Response(status_code=status, headers=headers, reason=STATUS_PHRASES[status])
            )
            output += self.conn.send(h11.Data(data=body)) or b""
            output += self.conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            if self.cycle is not None and self.cycle.response_started:
                self.transport.close()  # the app's answer has begun: nothing can be added to it
                return
            output = _raw_json_response(status, json.loads(body)["error"])  # h11 cannot frame one now
        self.transport.write(output)
        self.transport.close()


def _raw_json_response(status: int, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = [
        f"HTTP/1.1 {status} {STATUS_PHRASES[status].decode()}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name.decode()}: {value.decode()}" for name, value in _EXTRA_HEADERS),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body
