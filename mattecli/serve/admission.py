"""Admission by cost for ``matte serve``: a request the server cannot finish within its timeout is refused at
once (413 or 503 with ``Retry-After``), instead of waiting in the queue until the timeout fails it.

A request's cost is estimated from its size, which the image header gives before anything is decoded:
``fixed + per_mp * megapixels + per_tile * tiles`` seconds, where ``tiles`` is the number of
full-resolution refinement tiles the model would run on an image of that size (none for images it does not
refine; the tiles a photo's content lets it skip are not known in advance, so all of them count) and
``per_mp`` is what grows with the pixels besides the network (decoding, decontamination, encoding). The server is treated as one
worker that serves requests in order (the model runs one call at a time, and on a CPU the decoding and
encoding around it share the same cores), so a new request would finish after the work already admitted plus
its own. Admission fills only :data:`HEADROOM` of the timeout, for estimates that turn out low. If a
request's own cost alone is over that, no amount of waiting helps (413, with the size that fits); if the
queue ahead makes it too late, it is refused with 503 and ``Retry-After`` (the seconds until enough of that
work is done). And should the queue still fall behind, a request whose turn at the model comes too late to
finish is answered 503 then, not left to run into its timeout.

The costs are measured by the server itself: at start it mattes two synthetic images of its own (one at the
model's working size, one three times as long, which goes through full-resolution refinement as large photos
do) with the same code as requests, and encodes their cut-outs as PNG (:meth:`CostModel.fitted`,
:meth:`Admission.calibrate`); every finished request then corrects the estimate. Until the first measurement, :data:`PRIOR` applies: the same two
measurements on a 2-core CPU with a training run sharing it, deliberately slow.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mattecli.serve.requests import ApiError


@dataclass(frozen=True)
class CostModel:
    """Seconds a request takes when it is alone: ``fixed + per_mp * megapixels + per_tile * tiles``."""

    fixed: float
    per_mp: float  # decoding, decontaminating and encoding (and, for an image not refined, resizing)
    per_tile: float  # one full-resolution refinement tile through the network

    def seconds(self, megapixels: float, tiles: int = 0) -> float:
        return self.fixed + self.per_mp * megapixels + self.per_tile * tiles

    def scaled(self, factor: float) -> CostModel:
        return CostModel(self.fixed * factor, self.per_mp * factor, self.per_tile * factor)

    @classmethod
    def fitted(cls, small: Measurement, large: Measurement) -> CostModel:
        """The costs from two measured images: ``small`` at the working size (no refinement tiles), ``large``
        with refinement tiles (or none, when the model does not refine)."""
        per_mp = large.render / large.megapixels
        fixed = max(small.seconds - per_mp * small.megapixels, small.seconds * 0.5)
        rest = max(large.seconds - fixed - per_mp * large.megapixels, 0.0)
        if large.tiles:
            return cls(fixed, per_mp, rest / large.tiles)
        return cls(fixed, per_mp + rest / large.megapixels, 0.0)


@dataclass(frozen=True)
class Measurement:
    """One calibration image: its size, its refinement tiles, the seconds in all and those for rendering."""

    megapixels: float
    tiles: int
    seconds: float
    render: float


#: The default model on this project's 2-core CPU while a training run shared it, measured as at start
#: (512 x 352 in 1.0 s; 1536 x 1024, two refinement tiles, in 15 s, 1.3 s of it rendering). A 40 MP photo
#: took 241 s there (0.6 s to decode, 209 s for the 31 tiles its content needed of 54, 32 s to render); this
#: says 378 s, counting all 54.
PRIOR = CostModel(fixed=0.5, per_mp=0.8, per_tile=6.4)

#: The share of the timeout that admission fills: on a CPU that other work shares, requests took up to a
#: third longer than their estimates (the load changes between the calibration and the request).
HEADROOM = 0.75

#: How much one finished request moves the correction factor (large images count more: their cost is what
#: admission is about, and it is less noisy).
LEARNING_RATE_SMALL = 0.1
LEARNING_RATE_LARGE = 0.4
LARGE_MP = 2.0


@dataclass(eq=False)
class Ticket:
    """One admitted request: its size and estimated seconds."""

    megapixels: float
    estimate: float


class Admission:
    """The admitted requests' estimated work, and the decision for the next one.

    Only the event loop's thread uses it (no locks). ``clock`` is for tests.
    """

    def __init__(
        self, timeout: float, cost: CostModel = PRIOR, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.timeout = timeout
        self.cost = cost
        #: Refinement tiles per megapixel of a large photo (0: the model does not refine), for the size that fits.
        self.tiles_per_mp = 0.0
        self.calibrated = False
        self.correction = 1.0  # measured seconds / estimated seconds, learned from finished requests
        self.learned = 0  # requests learned from
        self._clock = clock
        self._tickets: list[Ticket] = []  # admitted and unfinished, oldest first
        self._head_since = 0.0  # when the oldest ticket became the oldest (its service began, in this model)

    def calibrate(self, cost: CostModel) -> None:
        """The costs this process measured for itself (its device, model and load); corrections start over."""
        self.cost = cost
        self.calibrated = True
        self.correction = 1.0

    def estimate(self, megapixels: float, tiles: int = 0) -> float:
        """Seconds a request for an image of this size takes on this server when it is alone."""
        return self.cost.seconds(megapixels, tiles) * self.correction

    @property
    def budget(self) -> float:
        """The estimated seconds a request may be given: the timeout less the headroom for misestimates."""
        return self.timeout * HEADROOM

    def fitting_megapixels(self) -> float:
        """About the largest photo that an idle server admits."""
        per_mp = self.cost.per_mp + self.cost.per_tile * self.tiles_per_mp
        if per_mp <= 0:
            return math.inf
        return max(0.0, (self.budget / self.correction - self.cost.fixed) / per_mp)

    def backlog(self) -> float:
        """Estimated seconds until the admitted requests are done (the oldest has been served since it became
        the oldest; the rest wait)."""
        if not self._tickets:
            return 0.0
        served = self._clock() - self._head_since
        head, *rest = self._tickets
        return max(head.estimate - served, 0.0) + sum(ticket.estimate for ticket in rest)

    def check_arrival(self) -> None:
        """Before a request's upload is read: refuse it if even a tiny image could not be finished in time."""
        wait = self.backlog()
        if wait + self.estimate(0.0) > self.budget:
            raise self._busy(wait, self.estimate(0.0), self.timeout)

    def reserve(self, megapixels: float, tiles: int = 0) -> Ticket:
        """Count work the server does for itself (its calibration) as ahead of every request."""
        ticket = Ticket(megapixels, self.estimate(megapixels, tiles))
        if not self._tickets:
            self._head_since = self._clock()
        self._tickets.append(ticket)
        return ticket

    def admit(self, name: str, megapixels: float, tiles: int, time_left: float) -> Ticket:
        """Admit a request for an image of ``megapixels`` (and ``tiles`` refinement tiles) that has
        ``time_left`` seconds, or refuse it."""
        estimate = self.estimate(megapixels, tiles)
        if estimate > self.budget:
            raise ApiError(
                413,
                f"{name}: a {megapixels:.1f} MP image takes about {estimate:.0f} s on this server (at its "
                f"measured speed), too long for its {self.timeout:g} s timeout; it takes images up to about "
                f"{self.fitting_megapixels():.1f} MP",
            )
        wait = self.backlog()
        if wait + estimate > time_left - (self.timeout - self.budget):
            raise self._busy(wait, estimate, time_left)
        return self.reserve(megapixels, tiles)

    def release(self, ticket: Ticket, seconds: float | None = None, finished: bool = True) -> None:
        """The request is over: ``seconds`` of work were measured for it (None: nothing worth learning from).

        An unfinished request (abandoned, timed out) teaches only when it ran longer than its estimate: that
        much is known to be a lower bound.
        """
        if ticket not in self._tickets:
            return
        was_head = self._tickets[0] is ticket
        self._tickets.remove(ticket)
        if was_head:
            self._head_since = self._clock()
        if seconds is None or seconds <= 0 or ticket.estimate <= 0:
            return
        if not finished and seconds <= ticket.estimate:
            return
        rate = LEARNING_RATE_LARGE if ticket.megapixels >= LARGE_MP else LEARNING_RATE_SMALL
        ratio = min(max(seconds / ticket.estimate, 0.05), 20.0)
        # Geometric: a request twice as fast and one twice as slow cancel out.
        self.correction = min(max(self.correction * ratio**rate, 0.01), 100.0)
        self.learned += 1

    @property
    def admitted(self) -> int:
        return len(self._tickets)

    def _busy(self, wait: float, estimate: float, time_left: float) -> ApiError:
        # When enough of the work ahead is done for the same request, sent again, to be admitted.
        retry = max(1, math.ceil(wait + estimate - self.budget))
        return ApiError(
            503,
            f"server busy: the requests ahead need about {wait:.0f} s more and this one about {estimate:.0f} s, "
            f"more than it can be given in the {time_left:.0f} s it has left (of {self.timeout:g} s); "
            f"try again in {retry} s",
            {"Retry-After": str(retry)},
        )


def calibration_images(max_size: int) -> list[np.ndarray]:
    """Two photo-like uint8 pictures (a textured background, a figure with a wavy outline): one at the
    model's working size (``max_size`` x about 2/3 of it) and one three times as long, which large-photo
    refinement treats as it treats real photos."""
    side = max(32, round(max_size * 2 / 3 / 32) * 32)
    return [_figure(side, max_size, seed=0), _figure(2 * max_size, 3 * max_size, seed=1)]


def _figure(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    y, x = (ys - height * 0.55) / (height * 0.38), (xs - width / 2) / (width * 0.22)
    outline = 1 + 0.08 * np.sin(np.arctan2(y, x) * 25)
    inside = (np.hypot(y, x) < outline)[..., None]
    background = np.array([70, 120, 150], np.float32) + 50 * rng.random((height, width, 3), np.float32)
    figure = np.array([200, 150, 120], np.float32) + 30 * rng.random((height, width, 3), np.float32)
    return np.where(inside, figure, background).astype(np.uint8)


def refinement_tiles(matter, width: int, height: int) -> int:
    """The full-resolution tiles ``matter`` would refine an image of this size in, all of them (0 for a model
    without tiled refinement, or an image it does not refine)."""
    from mattecli.tiling import REFINE_FACTOR, tile_windows

    tile_size, overlap = getattr(matter, "tile_size", None), getattr(matter, "tile_overlap", None)
    if tile_size is None or overlap is None:
        return 0
    refine = getattr(matter, "refine", None)
    if refine is None:
        refine = max(width, height) > REFINE_FACTOR * matter.max_size
    if not refine or not runs_network_tiles(matter):
        return 0
    return sum(1 for _ in tile_windows(height, width, tile_size, overlap))


def runs_network_tiles(matter) -> bool:
    """Whether ``matter``'s refinement runs the network on full-resolution tiles (``tiles``, ``band``,
    ``band+guided``); the default guided upsampling does not, so its cost is per megapixel. ``band`` runs
    only the tiles that meet the soft band: counting all of them is the upper bound admission wants."""
    return getattr(matter, "refinement", "tiles") != "guided"


def tiles_per_megapixel(matter) -> float:
    """Refinement tiles per megapixel of a large photo: each tile adds (tile - overlap)^2 new pixels."""
    tile_size, overlap = getattr(matter, "tile_size", None), getattr(matter, "tile_overlap", None)
    if tile_size is None or overlap is None or getattr(matter, "refine", None) is False:
        return 0.0
    if not runs_network_tiles(matter):
        return 0.0
    return 1e6 / (tile_size - overlap) ** 2
