"""Dynamic micro-batching: texts from concurrent requests share one model call.

The first waiting text opens a batch; the batch runs when it holds ``max_batch_size`` texts
or ``max_wait_ms`` has passed, whichever comes first. The model runs in one worker thread so
the event loop keeps accepting requests while a batch computes.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence


class BatcherClosed(RuntimeError):
    """The service is shutting down and takes no new work."""


class MicroBatcher:
    """Group ``submit``-ted inputs into batches for ``predict_batch`` (inputs → one dict per input)."""

    def __init__(self, predict_batch: Callable[[list[Any]], list[dict]], max_batch_size: int, max_wait_ms: float,
                 on_batch: Callable[[int, float], None] | None = None,
                 on_queue: Callable[[int], None] | None = None):
        self.predict_batch = predict_batch
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.on_batch, self.on_queue = on_batch, on_queue
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graftkit-model")
        self.closing = False

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self.queue = asyncio.Queue()
        self.worker = asyncio.get_running_loop().create_task(self._run(), name="graftkit-batcher")

    @property
    def running(self) -> bool:
        return self.worker is not None and not self.worker.done() and not self.closing

    async def submit(self, inputs: Sequence[Any]) -> list[dict]:
        """Predictions for ``inputs`` (in order), computed together with other requests' inputs."""
        if not self.running:
            raise BatcherClosed("the service is shutting down")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in inputs]
        for x, fut in zip(inputs, futures):
            self.queue.put_nowait((x, fut))
        if self.on_queue:
            self.on_queue(self.queue.qsize())
        return list(await asyncio.gather(*futures))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self.queue.get()
            if item is None:  # close(): everything queued before it has been served
                return
            batch = [item]
            deadline = loop.time() + self.max_wait
            stop = False
            while len(batch) < self.max_batch_size:
                try:
                    nxt = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self.queue.get(), left)
                    except asyncio.TimeoutError:
                        break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            await self._execute(batch)
            if self.on_queue:
                self.on_queue(self.queue.qsize())
            if stop:
                return

    async def _execute(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        live = [(x, f) for x, f in batch if not f.done()]  # a cancelled request needs no answer
        if not live:
            return
        t0 = time.perf_counter()
        try:
            preds = await asyncio.get_running_loop().run_in_executor(
                self.pool, self.predict_batch, [x for x, _ in live])
        except Exception as err:  # never let one input fail the others: retry them one by one
            if len(live) > 1:
                for one in live:
                    await self._execute([one])
                return
            if not live[0][1].done():
                live[0][1].set_exception(err)
            return
        if self.on_batch:
            self.on_batch(len(live), time.perf_counter() - t0)
        for (_, f), p in zip(live, preds):
            if not f.done():
                f.set_result(p)

    async def close(self) -> None:
        """Stop taking work, finish every queued input, then stop the loop (graceful shutdown)."""
        if self.worker is None:
            return
        self.closing = True
        self.queue.put_nowait(None)
        await self.worker
        self.pool.shutdown(wait=True)
