"""``matte serve``: the model behind a local HTTP API and web page (the optional ``serve`` extra)."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket

import typer

from mattecli.cli.common import (
    DeviceOption,
    MaxSizeOption,
    ModelOption,
    TtaOption,
    cli_errors,
    console,
    load_matter,
    prefer_sleeping_threads,
)


def install_hint() -> str:
    """What to run when the web stack is missing, for the way mattecli was installed."""
    from mattecli.extras import install_command

    return f"matte serve needs the web server extra: {install_command('serve')}"


def _required_modules() -> tuple[str, ...]:
    """The serve extra's packages (pyproject.toml lists them) as import names."""
    from mattecli.extras import extra_requirements

    names = (re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in extra_requirements("serve"))
    return tuple(name.lower().replace("-", "_") for name in names)


def serve_command(
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        metavar="HOST",
        help="Address to listen on. The default serves this machine only; 0.0.0.0 serves every network "
        "this machine is on, to anyone who can reach it.",
    ),
    port: int = typer.Option(7860, "--port", "-p", metavar="N", help="Port to listen on (0: any free port)."),
    model: ModelOption = "default",
    device: DeviceOption = "auto",
    max_size: MaxSizeOption = None,
    tta: TtaOption = False,
    max_upload_mb: float = typer.Option(
        25.0, "--max-upload-mb", metavar="MB", help="Largest upload accepted, in MB."
    ),
    max_megapixels: float = typer.Option(
        40.0,
        "--max-megapixels",
        metavar="MP",
        help="Largest image accepted, in millions of pixels (a ceiling: images that the server's measured "
        "speed says cannot be matted within --timeout are refused too).",
    ),
    queue_size: int = typer.Option(
        16,
        "--queue-size",
        metavar="N",
        help="Requests handled at once (uploading, waiting or matting); more get 503.",
    ),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        metavar="N",
        help="Most waiting images of one size matted in one model call (default: 1 on a CPU, where "
        "batches are slower per image, 4 on a GPU).",
        show_default=False,
    ),
    timeout: float = typer.Option(
        60.0,
        "--timeout",
        metavar="SECONDS",
        help="Seconds a request may take from upload to answer (10 of them, at most, for its headers). "
        "Requests that cannot make it, by the server's measured speed and queue, are refused at once.",
    ),
    cors_origin: list[str] = typer.Option(
        [],
        "--cors-origin",
        metavar="ORIGIN",
        help="Let web pages from this origin (https://host:port) call the API; repeatable. Off by default.",
        show_default=False,
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print only errors and the address (no request log)."
    ),
) -> None:
    """Serve the model over HTTP: a web page at / and POST /v1/matte for programs."""
    with cli_errors():
        _require_extra()
        prefer_sleeping_threads()
        from mattecli.serve.app import LOOPBACK_NAMES, MB, ServeSettings

        settings = ServeSettings(
            max_upload_bytes=_positive(max_upload_mb, "--max-upload-mb", MB),
            max_pixels=_positive(max_megapixels, "--max-megapixels", 1e6),
            queue_size=_at_least_one(queue_size, "--queue-size"),
            max_batch=1 if batch_size is None else _at_least_one(batch_size, "--batch-size"),
            timeout=_positive(timeout, "--timeout", 1.0),
            header_timeout=min(10.0, timeout),
            cors_origins=tuple(cors_origin),
            allowed_hosts=LOOPBACK_NAMES if _is_loopback(host) else None,
        )
        listener = _listen(host, port)
        try:
            matter = load_matter(model, device, max_size, quiet, tta=tta)
            if batch_size is None:
                settings = dataclasses.replace(settings, max_batch=default_batch_size(matter.device))
            _run(matter, settings, listener, quiet)
        finally:
            listener.close()


def default_batch_size(device) -> int:
    """1 on a CPU: there a batch of four 512 px images took 1.7x as long as the four one by one
    (benchmarks/RESULTS.md), so batching would only add latency. 4 elsewhere, where single small images
    leave a GPU mostly waiting on kernel launches."""
    return 1 if device.type == "cpu" else 4


def _require_extra() -> None:
    """One line on how to install the web stack, instead of an ImportError, when it is missing."""
    import importlib.util

    for name in _required_modules():
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            from rich.markup import escape

            # Printed here, escaped: the shared error printer reads "[serve]" as markup and drops it.
            console.print(f"[bold red]error:[/] {escape(install_hint())}", soft_wrap=True)
            raise typer.Exit(1)


def _positive(value: float, option: str, unit: float) -> float | int:
    from mattecli.errors import UsageError

    if not value > 0:
        raise UsageError(f"{option} must be positive, got {value:g}")
    return value if unit == 1.0 else max(1, int(value * unit))


def _at_least_one(value: int, option: str) -> int:
    from mattecli.errors import UsageError

    if value < 1:
        raise UsageError(f"{option} must be at least 1, got {value}")
    return value


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """Bind before the model loads, so a taken port is a one-line error and not a minute's wait."""
    from mattecli.errors import MatteError, UsageError

    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {port}")
    try:
        family, kind, protocol, _name, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise MatteError(f"cannot listen on {host!r} ({error.strerror})") from None
    listener = socket.socket(family, kind, protocol)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as error:
        listener.close()
        raise MatteError(_bind_problem(host, port, error)) from None
    listener.set_inheritable(True)
    return listener


def _bind_problem(host: str, port: int, error: OSError) -> str:
    """Why the server cannot listen there, and what to change: the address or the port."""
    import errno

    if error.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {host}:{port}: {host} is not an address of this machine; give one of its own "
            "addresses with --host (127.0.0.1 for this machine only, 0.0.0.0 for every network)"
        )
    return f"cannot listen on {host}:{port} ({error.strerror}); pick another --port"  # in use, or < 1024


def _run(matter, settings, listener: socket.socket, quiet: bool) -> None:
    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from mattecli.serve.app import create_app
    from mattecli.serve.protocol import uvicorn_config

    logging = copy.deepcopy(LOGGING_CONFIG)
    logging["loggers"]["uvicorn.error"]["level"] = "WARNING"  # our own line says where it listens
    logging["loggers"]["uvicorn.access"]["level"] = "WARNING" if quiet else "INFO"
    config = uvicorn_config(create_app(matter, settings), settings, log_config=logging)
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    console.print(f"serving on http://{shown}:{port}/ (Ctrl-C stops)", soft_wrap=True)
    if settings.allowed_hosts is None:
        console.print(
            "note: not a loopback address: anyone who can reach this machine on that port can use the server",
            soft_wrap=True,
        )
    uvicorn.Server(config).run(sockets=[listener])
