"""Dynamic micro-batching with a bound: texts from concurrent requests share one model call.

An idle model takes the waiting texts at once (up to ``max_batch_size``); texts that arrive while it
computes form the next batch, so batching costs nothing at low load and grows with the load.
``max_wait_ms > 0`` makes the first text of a batch wait for company instead. The model runs in one
worker thread, so the event loop keeps accepting requests while a batch computes.

Overload stays bounded: more than ``max_queue`` waiting texts → :class:`Overloaded` (503); a request past
its deadline → :class:`DeadlineExceeded` (504) and its queued texts are dropped, as they are when the
request is cancelled (client gone). A model call longer than ``call_timeout_s`` fails its texts with
:class:`ModelTimeout` (504); a thread cannot be stopped, so until that call returns the batcher is
``stuck``: it starts no other call (it would queue behind the hung one) and the service reports not ready.
A batch that fails is split in halves until the failing input is alone (bisection, at most
2·⌈log2 n⌉ more calls, so a model that always fails is not called 2n times), and a crash of the batching
loop fails the texts it held with :class:`WorkerCrashed` and starts a new loop: no future is ever left waiting.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

log = logging.getLogger("graftkit.serve")


async def in_own_thread(fn: Callable, *args: Any, name: str = "graftkit-reload") -> Any:
    """``fn(*args)`` in a thread of its own that ends with it, awaited from the event loop.

    Loading a model or draining a batcher takes seconds: in the loop's shared pool it would hold a thread that
    requests need, and make the pool grow by one for good at each reload.
    """
    pool = ThreadPoolExecutor(1, thread_name_prefix=name)
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
    finally:
        pool.shutdown(wait=False)


class BatcherClosed(RuntimeError):
    """The service is shutting down (or switched models) and takes no new work here."""


class Overloaded(RuntimeError):
    """The queue is full; ``retry_after`` estimates when it will have room (seconds)."""

    def __init__(self, queued: int, limit: int, retry_after: int):
        super().__init__(f"max_queue exceeded: {queued} texts are waiting and the limit is {limit}; "
                         f"retry after {retry_after} s")
        self.limit, self.retry_after = limit, retry_after


class DeadlineExceeded(TimeoutError):
    """The request's deadline passed before its predictions were ready; its queued texts were dropped."""


class ModelTimeout(RuntimeError):  # not a TimeoutError: that is the request deadline's
    """One model call ran past ``call_timeout_s``; its texts get this error (the call itself runs on)."""

    def __init__(self, limit: float):
        super().__init__(f"model_timeout_s exceeded: the model call took longer than {limit:g} s")
        self.limit = limit


class WorkerCrashed(RuntimeError):
    """The batching loop failed outside the model call; the texts it held get this error."""


class MicroBatcher:
    """Group ``submit``-ted inputs into batches for ``predict_batch`` (inputs → one dict per input)."""

    def __init__(self, predict_batch: Callable[[list[Any]], list[dict]], max_batch_size: int, max_wait_ms: float,
                 max_queue: int | None = None, on_batch: Callable[[int, float], None] | None = None,
                 on_queue: Callable[[int], None] | None = None, call_timeout_s: float | None = None):
        self.predict_batch = predict_batch
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.on_batch, self.on_queue = on_batch, on_queue
        self.call_timeout = call_timeout_s
        self.hung_call: asyncio.Future | None = None  # a timed-out call still holding the model thread
        self.queue: collections.deque[tuple[Any, asyncio.Future]] = collections.deque()
        self.held: list[tuple[Any, asyncio.Future]] = []  # the batch being computed
        self.wakeup: asyncio.Event | None = None
        self.worker: asyncio.Task | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graftkit-model")
        self.closing = False
        self.restarts = 0
        self.dropped = 0
        self.batch_seconds = 0.05  # running mean of one model call, for Retry-After estimates

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self.wakeup = asyncio.Event()
        self._spawn()

    def _spawn(self) -> None:
        self.worker = asyncio.get_running_loop().create_task(self._run(), name="graftkit-batcher")
        self.worker.add_done_callback(self._on_worker_done)

    @property
    def running(self) -> bool:
        return self.worker is not None and not self.worker.done() and not self.closing

    @property
    def stuck(self) -> bool:
        """A model call ran past ``call_timeout_s`` and has not returned yet."""
        return self.hung_call is not None and not self.hung_call.done()

    async def submit(self, inputs: Sequence[Any], timeout: float | None = None) -> list[dict]:
        """Predictions for ``inputs`` (in order), computed together with other requests' inputs.

        Raises:
            BatcherClosed: shutting down. Overloaded: the queue is full.
            DeadlineExceeded: not done within ``timeout`` seconds (the texts are dropped).
        """
        if not self.running:
            raise BatcherClosed("the service is shutting down")
        self._admit(len(inputs))
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in inputs]
        self.queue.extend(zip(inputs, futures))
        self.wakeup.set()
        self._report_queue()
        try:
            return list(await asyncio.wait_for(asyncio.gather(*futures), timeout))
        except asyncio.TimeoutError:
            self.dropped += sum(not f.done() or f.cancelled() for f in futures)
            raise DeadlineExceeded(f"request_timeout_s exceeded: no answer within {timeout} s") from None
        except asyncio.CancelledError:  # the client went away: its texts are skipped when their turn comes
            self.dropped += len(futures)
            raise

    def _admit(self, n: int) -> None:
        if self.max_queue is None or len(self.queue) + n <= self.max_queue:
            return
        self.queue = collections.deque(item for item in self.queue if not item[1].done())  # forget dropped texts
        if len(self.queue) + n > self.max_queue:
            batches = math.ceil((len(self.queue) + n) / self.max_batch_size)
            raise Overloaded(len(self.queue), self.max_queue, max(1, math.ceil(batches * self.batch_seconds)))

    def _report_queue(self) -> None:
        if self.on_queue:
            self.on_queue(len(self.queue))

    def _take(self) -> list[tuple[Any, asyncio.Future]]:
        batch = []
        while self.queue and len(batch) < self.max_batch_size:
            item = self.queue.popleft()
            if not item[1].done():  # a timed-out or cancelled request needs no answer
                batch.append(item)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wait_while_stuck()
            if self.stuck:  # closing while the model hangs: what waits cannot be computed
                self._fail(list(self.queue), BatcherClosed("shutting down while the model call is stuck"))
                self.queue.clear()
                return
            if not self.queue:
                if self.closing:
                    return
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            if self.max_wait > 0:
                deadline = loop.time() + self.max_wait
                while len(self.queue) < self.max_batch_size and not self.closing and loop.time() < deadline:
                    self.wakeup.clear()
                    try:
                        await asyncio.wait_for(self.wakeup.wait(), deadline - loop.time())
                    except asyncio.TimeoutError:
                        break
            self.held = self._take()
            if self.held:
                await self._execute(self.held)
            self.held = []
            self._report_queue()

    async def _wait_while_stuck(self) -> None:
        """Start no call while a timed-out one still holds the model thread (it would only queue behind it)."""
        while self.stuck and not self.closing:
            self.wakeup.clear()
            woken = asyncio.ensure_future(self.wakeup.wait())  # closing wakes it too
            await asyncio.wait({self.hung_call, woken}, return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()

    async def _call(self, live: list[tuple[Any, asyncio.Future]]) -> list[dict]:
        """One model call in the worker thread, bounded by ``call_timeout``; a timed-out call is kept as
        ``hung_call`` (a thread cannot be stopped)."""
        call = asyncio.get_running_loop().run_in_executor(self.pool, self.predict_batch, [x for x, _ in live])
        try:
            preds = await asyncio.wait_for(asyncio.shield(call), self.call_timeout)
        except asyncio.TimeoutError:
            self.hung_call = call
            call.add_done_callback(_retrieve)
            log.error(f"a model call ran past model_timeout_s={self.call_timeout:g}; not ready until it returns",
                      extra={"x_event": "model_timeout", "x_call_texts": len(live)})
            raise ModelTimeout(self.call_timeout) from None
        if len(preds) != len(live):
            raise RuntimeError(f"the model returned {len(preds)} predictions for {len(live)} inputs")
        return preds

    async def _execute(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        live = [(x, f) for x, f in batch if not f.done()]
        if not live:
            return
        t0 = time.perf_counter()
        try:
            preds = await self._call(live)
        except Exception as err:
            if isinstance(err, ModelTimeout) or len(live) == 1:  # a hung model is not asked again
                self._fail(live, err)
            else:
                await self._bisect(live, err, [2 * math.ceil(math.log2(len(live)))])
            return
        self._deliver(live, preds, time.perf_counter() - t0)

    async def _bisect(self, live: list[tuple[Any, asyncio.Future]], err: Exception, budget: list[int]) -> None:
        """Split a failed batch until each failing input is alone, within ``budget[0]`` more model calls
        (2 per halving isolate one bad input); texts left when the budget is spent get the batch's error."""
        mid = len(live) // 2
        for half in (live[:mid], live[mid:]):
            half = [(x, f) for x, f in half if not f.done()]
            if not half:
                continue
            if budget[0] <= 0:
                self._fail(half, err)
                continue
            budget[0] -= 1
            t0 = time.perf_counter()
            try:
                preds = await self._call(half)
            except Exception as half_err:
                if isinstance(half_err, ModelTimeout) or len(half) == 1:
                    self._fail(half, half_err)
                else:
                    await self._bisect(half, half_err, budget)
                continue
            self._deliver(half, preds, time.perf_counter() - t0)

    def _deliver(self, live: list[tuple[Any, asyncio.Future]], preds: list[dict], seconds: float) -> None:
        self.batch_seconds = 0.8 * self.batch_seconds + 0.2 * seconds
        for (_, f), p in zip(live, preds):
            if not f.done():
                f.set_result(p)
        if self.on_batch:
            self.on_batch(len(live), seconds)

    @staticmethod
    def _fail(items: list[tuple[Any, asyncio.Future]], err: Exception) -> None:
        for _, f in items:
            if not f.done():
                f.set_exception(err)

    def _on_worker_done(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is None:
            return
        err = task.exception()
        stranded = self.held + list(self.queue)
        self.held, self.queue = [], collections.deque()
        for _, f in stranded:
            if not f.done():
                f.set_exception(WorkerCrashed(f"the batch worker crashed ({type(err).__name__}: {err})"))
        log.error("batch worker crashed; restarting it", exc_info=err,
                  extra={"x_event": "worker_restart", "x_failed_texts": len(stranded)})
        self.restarts += 1
        if not self.closing:
            self._spawn()

    async def close(self) -> None:
        """Stop taking work, finish every queued input, then stop the loop (graceful shutdown)."""
        if self.worker is None:
            return
        self.closing = True
        self.wakeup.set()
        while not self.worker.done():
            await asyncio.wait({self.worker})  # a crash during shutdown respawns nothing; loop ends
        self.pool.shutdown(wait=not self.stuck)  # a hung call's thread is left to finish on its own


def _retrieve(call: asyncio.Future) -> None:
    """Fetch the outcome of a timed-out call once it ends (else asyncio logs 'exception never retrieved')."""
    if not call.cancelled():
        call.exception()
