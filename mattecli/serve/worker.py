"""The thread that owns the model: every model call of a server goes through it, one call at a time.

Requests hand it decoded images and wait on a future for the alpha matte. Running the network from one
thread keeps its memory at one call's worth and its threads from competing with each other; it also lets
waiting images of the same size (8-bit ones) go through the network together as one batch, which costs
no latency because the batch is only what piled up while the previous call ran. Everything around the model
(decoding, colour decontamination, encoding) runs in the callers' threads, overlapping the next call.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np


class QueueFull(Exception):
    """The worker already holds its maximum number of waiting images."""


class WorkerStopped(Exception):
    """The worker is shutting down (or has stopped) and takes no more images."""


class Abandoned(Exception):
    """Set on a job's future when its caller gave it up while the network was working on it."""


class TooLate(Exception):
    """Set on a job's future, instead of starting it, when it could no longer be finished by its deadline."""


class JobFuture(Future):
    """The future of one submitted image: its alpha, and how long the network took (``seconds``)."""

    def __init__(self) -> None:
        super().__init__()
        self.abandoned = False
        self.seconds = 0.0

    def abandon(self) -> None:
        """The caller no longer wants this image: if it still waits it never starts; if the network is on
        it, it stops after the tile in progress (a large image is refined a tile at a time)."""
        self.abandoned = True
        self.cancel()


@dataclass(eq=False)  # identity: waiting jobs are removed from the queue by ``is``, not by their pixels
class _Job:
    rgb: np.ndarray
    batchable: bool
    deadline: float = float("inf")  # time.monotonic() by which the caller needs its answer
    seconds: float = 0.0  # the caller's estimate of the time it needs from the network's start to its answer
    future: JobFuture = field(default_factory=JobFuture)

    def check(self, _done: int = 0, _total: int = 0) -> None:
        """Between refinement tiles: stop here if the caller went away."""
        if self.future.abandoned:
            raise Abandoned("the request was abandoned")


class ModelWorker:
    """A thread that runs ``matter``'s network for submitted images, in order, batching same-size ones.

    Args:
        matter: A loaded :class:`~mattecli.inference.Matter`; only this worker's thread may use its network.
        max_batch: Most images in one network call.
        max_pending: Most images waiting at once; :meth:`submit` raises :class:`QueueFull` beyond it.
    """

    def __init__(self, matter, max_batch: int = 4, max_pending: int = 64) -> None:
        if max_batch < 1 or max_pending < 1:
            raise ValueError("max_batch and max_pending must be at least 1")
        self._matter = matter
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._pending: deque[_Job] = deque()
        self._condition = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="matte-model", daemon=True)
        #: Network calls made and images they matted (calls < images means batching happened).
        self.calls = 0
        self.images = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Finish the call in progress, cancel whatever still waits, and end the thread."""
        with self._condition:
            self._stopping = True
            waiting = list(self._pending)
            self._pending.clear()
            self._condition.notify_all()
        for job in waiting:
            job.future.cancel()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def pending(self) -> int:
        """Images waiting for the network (not counting the call in progress)."""
        with self._condition:
            return len(self._pending)

    def submit(
        self, rgb: np.ndarray, batchable: bool = True, deadline: float = float("inf"), seconds: float = 0.0
    ) -> JobFuture:
        """Queue an H x W x 3 image (uint8, uint16 or float32 in [0, 1], as ``Matter.predict_alpha`` takes
        it); the future gives its H x W float32 alpha.

        ``batchable`` says the image may share a call with others of its size: only for uint8 images, which
        the batched path (``Matter.matte_frames``) takes. Cancelling the future before the worker reaches it
        takes the image out of the work; :meth:`JobFuture.abandon` also stops one the network is on.

        With a ``deadline`` (``time.monotonic()``) and the ``seconds`` the caller still needs once the network
        starts, an image whose turn comes too late to make it is not started: its future gets
        :class:`TooLate` at once, instead of its caller waiting for a deadline that cannot be met.
        """
        job = _Job(rgb, batchable, deadline, seconds)
        with self._condition:
            if self._stopping:
                raise WorkerStopped("the server is shutting down")
            if len(self._pending) >= self._max_pending:
                raise QueueFull(f"{len(self._pending)} images are already waiting")
            self._pending.append(job)
            self._condition.notify()
        return job.future

    def _next_batch(self) -> list[_Job] | None:
        """The oldest waiting image and up to ``max_batch - 1`` later ones of the same size; None to stop."""
        with self._condition:
            while not self._pending and not self._stopping:
                self._condition.wait()
            if not self._pending:
                return None
            first = self._pending.popleft()
            batch = [first]
            if first.batchable:
                for job in list(self._pending):
                    if len(batch) == self._max_batch:
                        break
                    if job.batchable and job.rgb.shape == first.rgb.shape:
                        self._pending.remove(job)
                        batch.append(job)
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
            now = time.monotonic()
            for job in [job for job in batch if now + job.seconds > job.deadline]:
                batch.remove(job)
                job.future.set_exception(
                    TooLate(f"it would need {job.seconds:.0f} s and has {job.deadline - now:.0f} s")
                )
            if not batch:
                continue
            started = time.perf_counter()
            try:
                alphas = self._predict(batch)
            except Exception as error:  # the requests report it; the worker must keep serving
                for job in batch:
                    job.future.seconds = time.perf_counter() - started
                    job.future.set_exception(error)
                continue
            seconds = time.perf_counter() - started
            self.calls += 1
            self.images += len(batch)
            for job, alpha in zip(batch, alphas, strict=True):
                job.future.seconds = seconds
                job.future.set_result(alpha)

    def _predict(self, batch: list[_Job]) -> list[np.ndarray]:
        if len(batch) == 1:
            # One image: its caller can give it up between refinement tiles.
            return [self._matter.predict_alpha(batch[0].rgb, on_tile=batch[0].check)]
        alphas, _ = self._matter.matte_frames(np.stack([job.rgb for job in batch]), decontaminate=False)
        return list(alphas)
