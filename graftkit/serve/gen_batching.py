"""Batching of concurrent generation requests: static batching with per-row early exit.

Requests that wait together (up to ``max_batch_size``, the first waiting at most ``max_wait_ms`` for
company: the server's ``generate_wait_ms``) and ask for the same decoding settings run as one ``generate()`` call. This is *static*
batching (as in TGI's and vLLM's baselines): a batch runs until every row has finished or been
cancelled, and requests arriving meanwhile wait for the next batch; rows are never added to a
running batch (that is continuous batching: :mod:`graftkit.serve.continuous`, which hands this batcher the
requests it cannot run).
A row whose client disconnects stops at the next decoding step (its stopping criterion), and the
batch ends early once all rows are done.

Each row streams text chunks (one chunk per decoded token, held back while a multi-byte character is
incomplete) into its request's asyncio queue; ``None`` ends the stream.

The waiting requests are bounded (``max_queue``: beyond it :class:`Overloaded`, a 503). The service owns
one batcher per loaded model and closes it (:meth:`GenerationBatcher.aclose`) on a reload and at shutdown:
what is queued is generated, then the thread ends and lets go of the model.
"""
from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from transformers import StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from graftkit.inference.generator import Cancelled, Generator
from graftkit.modeling.generation import decode_texts, generate_ids
from graftkit.serve.batching import BatcherClosed, Overloaded, in_own_thread


@dataclass
class Job:
    """One request: its prompt ids, decoding config, and where its chunks and final text go."""

    prompt: list[int]
    config: Any  # transformers.GenerationConfig
    key: str  # jobs with equal keys can share a batch
    loop: asyncio.AbstractEventLoop
    chunks: asyncio.Queue = field(default_factory=asyncio.Queue)
    done: asyncio.Future | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    tokens: int = 0

    def emit(self, chunk: str | None) -> None:
        self.loop.call_soon_threadsafe(self.chunks.put_nowait, chunk)


class RowStreamer(BaseStreamer):
    """Per-row incremental detokenisation for a batched ``generate()`` (transformers' streamers take one row)."""

    def __init__(self, tokenizer, jobs: list[Job], stop_ids: set[int], on_first: Callable[[Job], None]):
        self.tokenizer, self.jobs, self.stop_ids, self.on_first = tokenizer, jobs, stop_ids, on_first
        self.ids: list[list[int]] = [[] for _ in jobs]
        self.sent = [0] * len(jobs)
        self.finished = [False] * len(jobs)
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:  # generate() first hands over the prompt (decoder start for seq2seq)
            self.prompt_seen = True
            return
        for i, token in enumerate(value.reshape(len(self.jobs), -1)[:, -1].tolist()):
            job = self.jobs[i]
            if self.finished[i] or job.cancel.is_set():
                continue
            if token in self.stop_ids:
                self.finished[i] = True
                continue
            self.ids[i].append(token)
            job.tokens += 1
            if job.first_token is None:
                job.first_token = time.perf_counter()
                self.on_first(job)
            text = self.tokenizer.decode(self.ids[i], skip_special_tokens=True)
            if text.endswith("\ufffd"):
                continue  # a character split across tokens: wait for the rest of it
            if len(text) > self.sent[i]:
                job.emit(text[self.sent[i]:])
                self.sent[i] = len(text)

    def end(self) -> None:
        pass  # each job's stream is ended by the batcher, after its final text is set


class GenerationBatcher:
    """One worker thread running batched ``generate()`` calls over a :class:`Generator`."""

    def __init__(self, generator: Generator, max_batch_size: int = 8, max_wait_ms: float = 5.0,
                 on_batch: Callable[[int, float, int], None] | None = None,
                 on_first_token: Callable[[Job], None] | None = None, max_queue: int | None = None):
        self.generator = generator
        self.max_batch_size, self.max_wait = max_batch_size, max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.closing = False
        self.batch_seconds = 0.5  # running mean of one generate() call, for Retry-After estimates
        self.on_batch = on_batch or (lambda rows, seconds, tokens: None)
        self.on_first_token = on_first_token or (lambda job: None)
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.held: list[Job] = []  # taken from the queue but waiting for a batch with their settings
        self.thread = threading.Thread(target=self._run, name="graftkit-generate", daemon=True)
        self.running = True
        self.thread.start()

    def submit(self, prompt: list[int], config, key: str) -> Job:
        """Queue one request; read ``job.chunks`` (ends with None) and/or await ``job.done``.

        Raises:
            BatcherClosed: shutting down or switched models. Overloaded: ``max_queue`` requests are waiting.
        """
        if self.closing:
            raise BatcherClosed("the service is shutting down")
        waiting = self.jobs.qsize() + len(self.held)
        if self.max_queue is not None and waiting >= self.max_queue:
            batches = math.ceil((waiting + 1) / self.max_batch_size)
            raise Overloaded(waiting, self.max_queue, max(1, math.ceil(batches * self.batch_seconds)))
        loop = asyncio.get_running_loop()
        job = Job(prompt=prompt, config=config, key=key, loop=loop, done=loop.create_future())
        self.jobs.put(job)
        return job

    async def aclose(self, timeout: float | None = None) -> bool:
        """Take no new request, generate what is queued, end the thread; False if it outlived ``timeout`` s.
        Set on the event loop's thread, so no ``submit`` can slip in behind the end marker."""
        self.closing = True
        return await in_own_thread(self.close, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """The blocking part of :meth:`aclose` (from a thread other than the event loop's)."""
        self.closing = True
        self.jobs.put(None)
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _take_batch(self) -> list[Job] | None:
        first = self.held.pop(0) if self.held else self.jobs.get()
        if first is None:
            return None
        batch, deadline = [first], time.perf_counter() + self.max_wait
        for job in list(self.held):
            if job.key == first.key and len(batch) < self.max_batch_size:
                self.held.remove(job)
                batch.append(job)
        while len(batch) < self.max_batch_size:
            try:
                job = self.jobs.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if job is None:
                self.running = False
                break
            (batch if job.key == first.key else self.held).append(job)
        return [j for j in batch if not j.cancel.is_set()] or []

    def _run(self) -> None:
        while self.running or self.held:
            batch = self._take_batch()
            if batch is None:
                break
            if batch:
                self._generate(batch)

    def _generate(self, batch: list[Job]) -> None:
        g = self.generator
        gc = batch[0].config
        eos = gc.eos_token_id
        stops = set(eos if isinstance(eos, list) else [eos]) | {gc.pad_token_id}
        streamer = RowStreamer(g.tokenizer, batch, stops, self.on_first_token) if gc.num_beams == 1 else None
        t0 = time.perf_counter()
        try:
            with g.lock:
                ids = generate_ids(g.model, [j.prompt for j in batch], gc, g.decoder_only, streamer=streamer,
                                   stopping_criteria=StoppingCriteriaList([Cancelled(rows=[j.cancel for j in batch])]))
            texts = decode_texts(g.tokenizer, ids)
            results: list[Any] = list(zip(texts, (len(i) for i in ids)))
            tokens = sum(len(i) for i in ids)  # cancelled rows count what they generated before stopping
        except Exception as err:  # noqa: BLE001 - every waiting request gets the error, the worker lives on
            results, tokens = [err] * len(batch), 0
        seconds = time.perf_counter() - t0
        self.batch_seconds = 0.8 * self.batch_seconds + 0.2 * seconds
        self.on_batch(len(batch), seconds, tokens)
        for job, result in zip(batch, results):
            job.loop.call_soon_threadsafe(settle_job, job, result)


def settle_job(job: Job, result) -> None:
    """On the event loop: resolve ``job.done`` with ``result`` (text and tokens, or an exception) and end its
    stream; an already-resolved future (cancelled, expired) keeps its outcome. Both schedulers settle through it."""
    if not job.done.done():
        if isinstance(result, Exception):
            job.done.set_exception(result)
        else:
            job.done.set_result(result)
    job.chunks.put_nowait(None)
