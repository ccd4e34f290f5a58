"""Where `analyse` runs: a local process pool, or Ray tasks on a cluster. Neither writes outputs.

    with LocalEngine(settings, staging, jobs=2) as engine:     # or RayEngine(settings, address="auto")
        engine.run(chunks, on_done, stop)                      # on_done(list[Outcome]) on this thread

Both keep a bounded number of chunks in flight (twice the workers), so a batch of a million
inputs holds no more than a few chunks' worth of state, and a stop takes effect at once: no new
chunk starts, the chunks in progress end with their input in progress `interrupted` (no files),
and `run` returns when every chunk in flight has reported.

- LocalEngine: a process pool, one worker per core (spawned, so no thread of the driver is
  forked); each worker runs one interpreter thread, one frame-loop thread and OpenCV on one
  thread. Workers stage their files in the output's runs/.staging; a worker that dies makes its
  chunk's inputs error rows (the next run retries them), and the pool is started again for the rest.
- RayEngine: `ray.init(address)` (None: a Ray of this machine's cores), one task of one CPU per
  chunk, retried up to `retries` times when its worker or node dies. The settings go once into
  the object store with the model files' bytes (Settings.packed), so workers need only fer-edge
  installed; files come back as bytes and the driver alone writes them. Inputs must be readable
  at the same path on every node (a shared or mounted folder).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, CancelledError, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator, Sequence

from edge.batch.job import STATUS_ERROR, STATUS_INTERRUPTED, Outcome, Settings, Task, analyse

log = logging.getLogger(__name__)

OnDone = Callable[[list[Outcome]], None]
POLL_S = 0.2
CANCEL_WAIT_S = 30.0  # Ray: how long cancelled tasks get to report before they are ended by force


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _failed(chunk: Sequence[Task], status: str, error: str = "") -> list[Outcome]:
    return [Outcome(t, status, {"kind": t.kind, "error": error}) for t in chunk]


# ------------------------------------------------------------------------------------------ local

_worker_stop = None  # the pool's shared stop Event, in each worker process


def one_cpu_each() -> None:
    """A worker is one of as many as there are cores: OpenCV's own thread pool (resizes, colour
    conversion) would only make the workers' threads compete for the same cores."""
    import cv2

    cv2.setNumThreads(1)


def _init_worker(stop) -> None:
    global _worker_stop
    _worker_stop = stop
    one_cpu_each()
    # Ctrl-C reaches the whole process group: a worker stops through the shared Event (set by the
    # driver, or by run()'s own handler while an input runs), never by an exception between inputs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _local_analyse(chunk: Sequence[Task], settings: Settings, staging: str) -> list[Outcome]:
    return analyse(chunk, settings, staging=staging, stop=_worker_stop)


class LocalEngine:
    name = "local"

    def __init__(self, settings: Settings, staging: str | os.PathLike, jobs: int | None = None):
        self.settings = settings
        self.staging = str(staging)
        self.jobs = jobs or default_jobs()
        self._ctx = multiprocessing.get_context("spawn")
        self._stop = self._ctx.Event()
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "LocalEngine":
        return self

    @property
    def capacity(self) -> int:
        """Chunks that run at once: the workers."""
        return self.jobs

    def __exit__(self, *exc) -> None:
        self.close()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.jobs, mp_context=self._ctx, initializer=_init_worker,
                                   initargs=(self._stop,))

    def run(self, chunks: Iterable[Sequence[Task]], on_done: OnDone, stop: threading.Event) -> None:
        todo: Iterator[Sequence[Task]] = iter(chunks)
        inflight: dict = {}
        self._pool = self._pool or self._new_pool()

        def fill() -> None:
            while len(inflight) < 2 * self.jobs and not stop.is_set():
                chunk = next(todo, None)
                if chunk is None:
                    return
                inflight[self._pool.submit(_local_analyse, chunk, self.settings, self.staging)] = chunk

        fill()
        while inflight:
            done, _ = wait(inflight, timeout=POLL_S, return_when=FIRST_COMPLETED)
            if stop.is_set() and not self._stop.is_set():
                self._stop.set()  # the workers' frame loops end; chunks not started are dropped
                for future in inflight:
                    future.cancel()
            broken = False
            for future in done:
                chunk = inflight.pop(future)
                try:
                    outcomes = future.result()
                except CancelledError:
                    outcomes = _failed(chunk, STATUS_INTERRUPTED)
                except BrokenProcessPool:
                    broken = True
                    outcomes = _failed(chunk, STATUS_ERROR, "the worker process died on this input or one "
                                       "processed beside it (out of memory?); run the batch again to retry it")
                on_done(outcomes)
            if broken:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
            fill()

    def close(self) -> None:
        if self._pool is not None:
            self._stop.set()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# -------------------------------------------------------------------------------------------- ray


def _ray_analyse(chunk: Sequence[Task], settings: Settings) -> list[Outcome]:
    one_cpu_each()  # a task holds one CPU of its node
    return analyse(chunk, settings, staging=None)


class RayEngine:
    name = "ray"

    def __init__(self, settings: Settings, address: str | None = None, retries: int = 3, jobs: int | None = None):
        self.settings = settings
        self.address = address
        self.retries = retries
        self.jobs = jobs  # CPUs of a Ray this engine starts itself (None: every core)
        self._ray = None
        self._started = False

    def __enter__(self) -> "RayEngine":
        import ray

        self._ray = ray
        if not ray.is_initialized():
            kwargs = {"num_cpus": self.jobs or default_jobs()} if self.address is None else {}
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, **kwargs)
            self._started = True
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def capacity(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def run(self, chunks: Iterable[Sequence[Task]], on_done: OnDone, stop: threading.Event) -> None:
        ray = self._ray
        todo: Iterator[Sequence[Task]] = iter(chunks)
        settings_ref = ray.put(self.settings.packed())
        task = ray.remote(_ray_analyse).options(num_cpus=1, max_retries=self.retries, retry_exceptions=False)
        inflight: dict = {}
        cancelled_at: float | None = None

        def fill() -> None:
            while len(inflight) < 2 * self.capacity and not stop.is_set():
                chunk = next(todo, None)
                if chunk is None:
                    return
                inflight[task.remote(chunk, settings_ref)] = chunk

        fill()
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_S)
            if stop.is_set() and cancelled_at is None:
                cancelled_at = time.monotonic()
                for ref in inflight:
                    ray.cancel(ref)  # KeyboardInterrupt in a running task: its input leaves nothing
            elif cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_WAIT_S:
                for ref in inflight:
                    ray.cancel(ref, force=True)
                cancelled_at = float("inf")
            for ref in ready:
                chunk = inflight.pop(ref)
                try:
                    outcomes = ray.get(ref)
                except ray.exceptions.TaskCancelledError:
                    outcomes = _failed(chunk, STATUS_INTERRUPTED)
                except ray.exceptions.RayError as exc:
                    status = STATUS_INTERRUPTED if stop.is_set() else STATUS_ERROR
                    outcomes = _failed(chunk, status, f"Ray gave up on this input after {self.retries} "
                                       f"retries: {_first_line(exc)}")
                on_done(outcomes)
            fill()

    def close(self) -> None:
        if self._started and self._ray is not None:
            self._ray.shutdown()
            self._started = False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
