"""The guard in front of every ``matte serve`` response: security headers, and Host names checked.

Bound to loopback, the server answers only requests addressed to a loopback name, so a web page elsewhere
cannot reach it through DNS rebinding (its requests carry the attacker's host name); every response gets
headers that keep browsers from sniffing types, leaking referrers or framing the page.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mattecli.serve.requests import error_response

#: The names a loopback-bound server answers to (``ServeSettings.allowed_hosts`` by default).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
        b"frame-ancestors 'none'; form-action 'self'",
    ),
]


class Guard:
    """ASGI middleware: security headers on every response; with ``allowed_hosts``, requests whose Host
    header names another server are refused (what a DNS-rebinding page would send)."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...] | None) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {name.lower() for name in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS]}
            await send(message)

        host = _host_name(scope)
        if self.allowed is not None and host not in self.allowed:
            response = error_response(
                400,
                f"this server answers requests for {', '.join(sorted(self.allowed))} only, not {host!r} "
                "(start it with --host to serve other names)",
            )
            await response(scope, receive, send_secured)
            return
        await self.app(scope, receive, send_secured)


def _host_name(scope: Scope) -> str:
    """The Host header without its port ("[::1]:7860" -> "::1")."""
    for key, value in scope.get("headers", []):
        if key == b"host":
            host = value.decode("latin-1").strip().lower()
            if host.startswith("["):
                return host[1:].split("]", 1)[0]
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return ""
