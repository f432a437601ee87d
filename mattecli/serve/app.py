"""The web layer of ``matte serve``: a Starlette app around one :class:`~mattecli.serve.worker.ModelWorker`.

Routes: ``POST /v1/matte`` (an image in, the cut-out, matte or composite out), ``GET /v1/models``,
``GET /healthz``, and the web page at ``/`` with its two static files. Every error is JSON
``{"error": "..."}`` with a status that says whose fault it is, never a traceback.

Safe by default (the page and API are meant for one machine, or a trusted network when ``--host`` says so):

- admission control: at most ``queue_size`` matte requests are in the server at once (uploading, waiting or
  being matted); the next one gets 503 at once, before its body is read, so memory stays bounded; and a
  request that the server cannot finish within ``timeout``, by its own measured speed, is refused as soon as
  its image header gives its size (413 if it is too large to ever fit, else 503 with ``Retry-After``), see
  :mod:`~mattecli.serve.admission`;
- a client that goes away is not worked for: its image is dropped at the next stage (decoding, the network,
  each full-resolution refinement tile, rendering), and one still waiting for the network never starts;
- an upload larger than ``max_upload_bytes`` is refused from its Content-Length before anything is read,
  or as soon as the bytes streamed so far pass the limit (chunked uploads, lying clients);
- images larger than ``max_pixels`` are refused from their header, before they are decoded;
- every request has ``timeout`` seconds from its first byte to its answer, and ``header_timeout`` for its
  request line and headers (:mod:`~mattecli.serve.protocol`, which also makes uvicorn's own errors JSON);
- a request can only send an image: no option names a path on the server or a URL to fetch;
- bound to loopback, the server answers only requests addressed to a loopback name (a web page elsewhere
  cannot reach it through DNS rebinding), and CORS is off unless origins are listed.

This module holds the routes and the state they share; checking a request's options, body and image is
:mod:`~mattecli.serve.requests`, the Host check and security headers :mod:`~mattecli.serve.guard`, and the
bytes of the answer :mod:`~mattecli.serve.render`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from types import SimpleNamespace

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mattecli.errors import MatteError
from mattecli.serve.admission import (
    PRIOR,
    Admission,
    CostModel,
    Measurement,
    calibration_images,
    refinement_tiles,
    tiles_per_megapixel,
)
from mattecli.serve.guard import LOOPBACK_NAMES, Guard
from mattecli.serve.render import PARAMETERS, RenderOptions, render
from mattecli.serve.requests import (
    MB,
    ApiError,
    body_kind,
    check_declared_length,
    decode_upload,
    error_response,
    image_size,
    request_options,
    too_large,
    upload_name,
)
from mattecli.serve.worker import ModelWorker, QueueFull, TooLate, WorkerStopped

log = logging.getLogger("uvicorn.error")

STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class ServeSettings:
    """Limits of one server. ``allowed_hosts``: the Host names it answers (None: any)."""

    max_upload_bytes: int = 25 * MB
    max_pixels: int = 40_000_000
    queue_size: int = 16
    max_batch: int = 1  # batches are slower per image on a CPU; `matte serve` uses 4 on a GPU
    timeout: float = 60.0
    header_timeout: float = 10.0  # for each request's line and headers (the connection layer's deadline)
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] | None = LOOPBACK_NAMES
    cost: CostModel = PRIOR  # the estimate until the server has measured itself
    calibrate: bool = True  # measure at start (two synthetic images through the model)


def create_app(matter, settings: ServeSettings | None = None) -> Starlette:
    """The ASGI app for a loaded :class:`~mattecli.inference.Matter`; its lifespan runs the model worker."""
    server = _Server(matter, settings or ServeSettings())
    middleware = [Middleware(Guard, allowed_hosts=server.settings.allowed_hosts)]
    if server.settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(server.settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Content-Type"],
                expose_headers=["Content-Disposition"],
            )
        )
    routes = [
        Route("/", server.page, methods=["GET"]),
        Route("/static/{name}", server.static, methods=["GET"]),
        Route("/v1/matte", server.matte, methods=["POST"]),
        Route("/v1/models", server.models, methods=["GET"]),
        Route("/healthz", server.health, methods=["GET"]),
    ]
    handlers = {HTTPException: _http_error, Exception: _internal_error}
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=server.lifespan
    )


class _Server:
    """The endpoints and the state they share (the worker, the admission count)."""

    def __init__(self, matter, settings: ServeSettings) -> None:
        for name in ("max_upload_bytes", "max_pixels", "queue_size", "max_batch"):
            if getattr(settings, name) < 1:
                raise MatteError(f"{name} must be at least 1, got {getattr(settings, name)}")
        for name in ("timeout", "header_timeout"):
            if not getattr(settings, name) > 0:
                raise MatteError(f"{name} must be positive, got {getattr(settings, name)}")
        self.matter = matter
        self.settings = settings
        self.worker = ModelWorker(matter, settings.max_batch, max_pending=settings.queue_size)
        self.active = 0  # matte requests admitted and not yet answered (the event loop's thread only)
        self.admission = Admission(settings.timeout, settings.cost)
        self.admission.tiles_per_mp = tiles_per_megapixel(matter)
        self.abandoned = 0  # requests whose client went away before their answer
        # Decoding, decontamination and encoding run in threads, at most this many at once: they are
        # CPU-bound, and each holds a full-size image.
        self.cpu_threads = max(1, min(4, os.cpu_count() or 1))
        self.files = _load_static()

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.cpu = anyio.CapacityLimiter(self.cpu_threads)
        self.worker.start()
        calibration = asyncio.ensure_future(self._calibrate()) if self.settings.calibrate else None
        try:
            yield
        finally:
            if calibration is not None:
                calibration.cancel()
            await anyio.to_thread.run_sync(self.worker.stop)

    async def _calibrate(self) -> None:
        """Measure this server's speed: two synthetic images matted and encoded as requests are, the second
        large enough for full-resolution refinement. Requests that come meanwhile wait behind it, and the
        admission counts it as work ahead of them (the second at the speed the first showed)."""
        images = await self._in_thread(calibration_images, self.matter.max_size)
        measured: list[Measurement] = []
        try:
            for pixels in images:
                height, width = pixels.shape[:2]
                megapixels, tiles = width * height / 1e6, refinement_tiles(self.matter, width, height)
                ticket = self.admission.reserve(megapixels, tiles)
                started = time.perf_counter()
                try:
                    alpha = await asyncio.wrap_future(self.worker.submit(pixels, batchable=False))
                    rendered = time.perf_counter()
                    picture = SimpleNamespace(pixels=pixels, alpha_pixels=None)
                    await self._in_thread(render, picture, alpha, RenderOptions())
                finally:
                    self.admission.release(ticket)
                now = time.perf_counter()
                measured.append(Measurement(megapixels, tiles, now - started, now - rendered))
                if len(measured) == 1:  # until the second: the prior, at the speed the first showed
                    self.admission.cost = self.admission.cost.scaled(measured[0].seconds / ticket.estimate)
        except Exception as error:  # the prior stays; the server still serves
            log.warning("matte serve: could not measure its speed (%s); estimating from defaults", error)
            return
        self.admission.calibrate(CostModel.fitted(*measured))

    # -- the API ----------------------------------------------------------------------------------

    async def matte(self, request: Request) -> Response:
        """``POST /v1/matte``: admission first, so a full server refuses before reading anything."""
        limit = self.settings.queue_size
        if self.active >= limit:
            return error_response(
                503,
                f"server busy: {self.active} requests are being handled (its queue holds {limit}); "
                "try again shortly",
                {"Retry-After": "1"},
            )
        try:
            self.admission.check_arrival()
        except ApiError as error:
            return error.response()
        self.active += 1
        try:
            return await self._matte(request)
        except ApiError as error:
            return error.response()
        finally:
            self.active -= 1

    async def _matte(self, request: Request) -> Response:
        settings = self.settings
        started = time.monotonic()
        query = list(request.query_params.multi_items())
        options = request_options(query)
        kind = body_kind(request.headers.get("content-type"))
        check_declared_length(request.headers.get("content-length"), settings.max_upload_bytes)
        phase, name = "upload", "upload"
        try:
            with anyio.fail_after(settings.timeout):
                if kind == "form":
                    data, name, fields = await self._read_form(request)
                    if fields:
                        options = request_options(query + fields)
                else:
                    data, name = b"".join([c async for c in self._body(request)]), "upload"
                phase = "decode"
                size = await self._in_thread(image_size, data, name, settings.max_pixels)
                width, height = size or (0, 0)
                tiles = refinement_tiles(self.matter, width, height)
                time_left = settings.timeout - (time.monotonic() - started)
                ticket = self.admission.admit(name, width * height / 1e6, tiles, time_left)
                work = [0.0]  # seconds of decoding, network and rendering, as measured
                upload = [data]  # handed over, so that it is freed once decoded
                del data
                deadline = started + settings.timeout
                try:
                    body = await self._unless_disconnected(
                        request,
                        lambda: self._process(upload, name, options, (deadline, ticket.estimate), work),
                    )
                except BaseException:
                    self.admission.release(ticket, work[0], finished=False)
                    raise
                self.admission.release(ticket, work[0], finished=body is not None)
                if body is None:  # the client went away: nobody reads this
                    self.abandoned += 1
                    return error_response(499, "the client closed the connection")
        except TimeoutError:
            if phase == "upload":
                raise ApiError(408, f"the upload did not arrive within {settings.timeout:g} s") from None
            raise ApiError(
                503, f"the image was not finished within {settings.timeout:g} s (the server is busy)"
            ) from None
        except (RuntimeError, ValueError, MemoryError) as error:
            reason = " ".join(str(error).split())[:160] or type(error).__name__
            raise ApiError(500, f"{name}: could not process the image ({reason})") from None
        headers = {
            "Content-Disposition": f'inline; filename="{options.filename(name)}"',
            "Cache-Control": "no-store",
        }
        return Response(body, media_type=options.media_type, headers=headers)

    async def _process(
        self,
        upload: list[bytes],
        name: str,
        options: RenderOptions,
        plan: tuple[float, float],
        work: list[float],
    ) -> bytes:
        """Decode, matte and render one upload; ``plan`` is its deadline and estimated seconds, ``work[0]``
        adds up the seconds each stage ran."""
        clock = time.perf_counter()
        image = await self._in_thread(decode_upload, upload.pop(), name, self.settings.max_pixels)
        work[0] += time.perf_counter() - clock
        deadline, estimate = plan
        future = self._submit(image, deadline, max(estimate - work[0], 0.0))
        try:
            alpha = await asyncio.wrap_future(future)
        except TooLate as error:
            retry = max(1, math.ceil(self.admission.backlog() - self.admission.budget + estimate))
            raise ApiError(
                503,
                f"server busy: it fell behind its estimates, and this image would not be finished in time when "
                f"its turn came ({error}); try again in {retry} s",
                {"Retry-After": str(retry)},
            ) from None
        finally:
            work[0] += future.seconds
            if not future.done() or future.cancelled():
                future.abandon()  # cancelled (the client left, or the timeout): the network stops too
        clock = time.perf_counter()
        body = await self._in_thread(render, image, alpha, options)
        work[0] += time.perf_counter() - clock
        return body

    async def _unless_disconnected(
        self, request: Request, work: Callable[[], Awaitable[bytes]]
    ) -> bytes | None:
        """``work()``, cancelled at its next stage if the client disconnects meanwhile (None then).

        The body has been read, so the only message left for ``receive`` is the disconnect."""
        outcome: dict[str, object] = {}
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                outcome["gone"] = True
                group.cancel_scope.cancel()

            async def run() -> None:
                try:
                    outcome["body"] = await work()
                except Exception as error:  # raised here, not as an exception group
                    outcome["error"] = error
                group.cancel_scope.cancel()

            group.start_soon(watch)
            group.start_soon(run)
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome.get("body")  # type: ignore[return-value]

    def _submit(self, image, deadline: float, seconds: float):
        try:
            return self.worker.submit(
                image.pixels, batchable=image.pixels.dtype == np.uint8, deadline=deadline, seconds=seconds
            )
        except (QueueFull, WorkerStopped) as error:
            raise ApiError(503, f"server busy ({error}); try again shortly", {"Retry-After": "1"}) from None

    async def _in_thread(self, function: Callable, *args):
        return await anyio.to_thread.run_sync(function, *args, limiter=self.cpu)

    async def _body(self, request: Request) -> AsyncIterator[bytes]:
        """The request body as it streams in, refused (413) the moment it passes the limit."""
        limit = self.settings.max_upload_bytes
        total = 0
        try:
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    raise ApiError(413, too_large(limit))
                yield chunk
        except ClientDisconnect:
            raise ApiError(400, "the client went away before the upload finished") from None

    async def _read_form(self, request: Request) -> tuple[bytes, str, list[tuple[str, str]]]:
        """The file in field ``image`` (kept in memory: it is within the limit) and the text fields."""
        parser = MultiPartParser(
            request.headers, self._body(request), max_files=1, max_fields=2 * len(PARAMETERS)
        )
        parser.spool_max_size = self.settings.max_upload_bytes + 1
        try:
            form = await parser.parse()
        except MultiPartException as error:
            raise ApiError(400, f"bad multipart form ({error.message})") from None
        try:
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                named = [key for key, value in form.multi_items() if isinstance(value, UploadFile)]
                also = f" (the form has a file in {named[0]!r})" if named else ""
                raise ApiError(400, f"no file in the form field 'image'{also}")
            data = await upload.read()
            fields = [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
            return data, upload_name(upload.filename), fields
        finally:
            await form.close()

    async def models(self, _request: Request) -> Response:
        """``GET /v1/models``: the one model this server runs and how."""
        matter = self.matter
        model = {
            "id": _model_id(matter.model_name),
            "config": matter.config.name,
            "max_size": matter.max_size,
            "device": str(matter.device),
            "precision": "fp16" if matter.half else "fp32",
            "tta": bool(matter.tta),
        }
        return JSONResponse({"models": [model]})

    async def health(self, _request: Request) -> Response:
        """``GET /healthz``: 200 while the model worker runs, with the load."""
        alive = self.worker.alive
        return JSONResponse(
            {
                "status": "ok" if alive else "stopped",
                "active": self.active,
                "waiting": self.worker.pending,
                "queue_size": self.settings.queue_size,
                "model_calls": self.worker.calls,
                "images": self.worker.images,
                "abandoned": self.abandoned,
                "backlog_s": round(self.admission.backlog(), 1),
                "cost": {
                    "fixed_s": round(self.admission.cost.fixed * self.admission.correction, 3),
                    "per_mp_s": round(self.admission.cost.per_mp * self.admission.correction, 3),
                    "per_tile_s": round(self.admission.cost.per_tile * self.admission.correction, 3),
                    "measured": self.admission.calibrated,
                    "fits_mp": round(min(self.admission.fitting_megapixels(), 1e6), 1),
                },
            },
            status_code=200 if alive else 503,
        )

    # -- the page ---------------------------------------------------------------------------------

    async def page(self, _request: Request) -> Response:
        return self._file("index.html")

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.files:  # a fixed set of names: nothing from the request reaches the disk
            return error_response(404, f"not found: /static/{name}")
        return self._file(name)

    def _file(self, name: str) -> Response:
        return Response(
            self.files[name], media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"}
        )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        message = f"not found: {request.url.path} (the API is POST /v1/matte, GET /v1/models, GET /healthz)"
    elif error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(error.detail)
    return error_response(error.status_code, message, error.headers)


async def _internal_error(_request: Request, _error: Exception) -> Response:
    # The traceback goes to the server's log (Starlette re-raises after answering); the client gets one line.
    return error_response(500, "internal server error (the server's log has the details)")


def _model_id(model_name: str) -> str:
    """A built-in name as it is; a weights file by its stem (the server's folders are nobody's business)."""
    if model_name.endswith(".safetensors") or "/" in model_name or os.sep in model_name:
        return os.path.basename(model_name).removesuffix(".safetensors")
    return model_name


def _load_static() -> dict[str, bytes]:
    folder = resources.files("mattecli.serve.static")
    return {name: (folder / name).read_bytes() for name in STATIC_FILES}
