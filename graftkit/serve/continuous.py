"""Continuous (iteration-level) batching for ``/v1/generate``, over transformers' ``ContinuousBatchingManager``.

Requests join the running batch between decoding steps and leave it when they finish, are cancelled or pass
their deadline, as in vLLM and TGI; none waits for a whole batch to end. We build on transformers' own manager
(``model.init_continuous_batching()``) rather than a scheduler of our own: it keeps each sequence's KV cache in
its own pages of a paged cache, admits waiting requests between steps (fifo) and runs on CPU with sdpa, and its
greedy tokens equal ``generate()``'s.

The manager builds its logits processors once, from one decoding config, and drops the ones it does not support
(repetition penalties, minimum lengths). So a request runs continuously when its settings are the run's own
(``max_new_tokens`` may differ); any other setting, beam search, and seq2seq runs go to the static
:class:`~graftkit.serve.gen_batching.GenerationBatcher` this batcher holds as ``fallback``.

``on_batch`` is called once per busy period (from idle to idle): the requests served, its seconds and tokens.
"""
from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from transformers import ContinuousBatchingConfig, GenerationConfig

from graftkit.inference.generator import Generator
from graftkit.modeling.generation import decode_texts
from graftkit.serve.batching import BatcherClosed, Overloaded, in_own_thread
from graftkit.serve.gen_batching import GenerationBatcher, Job, settle_job
from graftkit.serve.settings import ServeConfig

# settings whose logits processors the manager drops or cannot apply (beams): such requests batch statically
_STATIC_ONLY = {"num_beams": 1, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "min_new_tokens": 0,
                "min_length": 0}
_PAGE_TOKENS = 32


class _CancelEvent(threading.Event):
    """``Job.cancel`` that also tells the manager: the route sets it when the client leaves or times out."""

    def __init__(self, on_set: Callable[[], None]):
        super().__init__()
        self.on_set = on_set

    def set(self) -> None:
        if not self.is_set():
            super().set()
            self.on_set()


@dataclass
class _Row:
    """One request in the manager: its job, the tokens so far and the text already streamed."""

    rid: str
    job: Job
    stops: set[int]
    ids: list[int] = field(default_factory=list)
    sent: int = 0
    timer: asyncio.TimerHandle | None = None


def continuous_fits(config: GenerationConfig) -> bool:
    """True when the manager applies every setting of ``config`` (see the module docstring)."""
    return all(getattr(config, k, None) in (None, v) for k, v in _STATIC_ONLY.items())


def _comparable(config: GenerationConfig) -> dict[str, Any]:
    d = config.to_diff_dict()
    d.pop("max_new_tokens", None)
    return d


class ContinuousBatcher:
    """Continuous batching over one :class:`Generator`'s model; same ``submit`` / ``aclose`` as the static batcher."""

    def __init__(self, generator: Generator, fallback: GenerationBatcher, max_batch_size: int = 8,
                 max_queue: int | None = None, deadline_s: float | None = None,
                 on_batch: Callable[[int, float, int], None] | None = None,
                 on_first_token: Callable[[Job], None] | None = None):
        self.generator, self.fallback = generator, fallback
        self.max_batch_size, self.max_queue, self.deadline_s = max_batch_size, max_queue, deadline_s
        self.on_batch = on_batch or (lambda rows, seconds, tokens: None)
        self.on_first_token = on_first_token or (lambda job: None)
        self.closing = False
        self.base = generator.config_for()
        self.base_key = _comparable(self.base)
        self.active: dict[str, _Row] = {}  # touched on the event loop's thread only
        self.idle = asyncio.Event()
        self.idle.set()
        self.period = (0.0, 0, 0)  # busy period: start, requests, tokens
        self.step_seconds = 0.05  # running mean of one request's time, for Retry-After estimates
        self.ids = itertools.count()
        # The manager's thread runs the model without ``generator.lock``: forward passes in eval mode do not
        # change the model, so it may overlap the fallback's (or /v1/predict's) generate() calls.
        self.manager = generator.model.init_continuous_batching(
            generation_config=self.base, continuous_batching_config=_cb_config(generator, max_batch_size))
        self.manager.start()

    def submit(self, prompt: list[int], config, key: str) -> Job:
        """Queue one request; read ``job.chunks`` (ends with None) and/or await ``job.done``.

        Raises:
            BatcherClosed: shutting down or switched models. Overloaded: ``max_queue`` requests are waiting.
        """
        if self.closing:
            raise BatcherClosed("the service is shutting down")
        if _comparable(config) != self.base_key:
            return self.fallback.submit(prompt, config, key)
        waiting = len(self.active) - self.max_batch_size
        if self.max_queue is not None and waiting >= self.max_queue:
            raise Overloaded(waiting, self.max_queue, max(1, math.ceil(self.step_seconds * (waiting + 1)
                                                                       / self.max_batch_size)))
        loop = asyncio.get_running_loop()
        rid = f"graftkit-{next(self.ids)}"
        job = Job(prompt=prompt, config=config, key=key, loop=loop, done=loop.create_future(),
                  cancel=_CancelEvent(lambda: self._cancel(rid, loop)))
        eos = config.eos_token_id
        row = _Row(rid, job, set(eos if isinstance(eos, list) else [eos]) | {config.pad_token_id})
        self._admit(row)
        self.manager.register_result_handler(rid, lambda out: self._on_output(row, out))
        accepted = self.manager.add_request(prompt, request_id=rid, max_new_tokens=config.max_new_tokens,
                                            streaming=True)
        if accepted is None:
            self._finish(row, BatcherClosed("the generation engine has stopped"))
            raise BatcherClosed("the generation engine has stopped")
        if self.deadline_s is not None:
            row.timer = loop.call_later(self.deadline_s, self._expire, row)
        return job

    async def aclose(self, timeout: float | None = None) -> bool:
        """Take no new request, finish the running ones, stop the manager; False if it outlived ``timeout`` s."""
        self.closing = True
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(self.idle.wait(), timeout)
            drained = True
        except asyncio.TimeoutError:
            drained = False
            for row in list(self.active.values()):
                row.job.cancel.set()
        left = None if timeout is None else max(0.1, timeout - (time.perf_counter() - t0))
        await in_own_thread(self.manager.stop, True, left)
        stopped = await self.fallback.aclose(left)
        return drained and stopped and not self.manager.is_running()

    # -- on the event loop's thread
    def _admit(self, row: _Row) -> None:
        if not self.active:
            self.period = (time.perf_counter(), 0, 0)
            self.idle.clear()
        self.active[row.rid] = row

    def _on_output(self, row: _Row, out) -> None:
        if row.rid not in self.active:
            return  # cancelled or expired: already settled
        if out.error:
            self._finish(row, RuntimeError(out.error))
            return
        new = out.generated_tokens
        cut = next((i for i, t in enumerate(new) if t in row.stops), len(new))
        row.ids = list(new[:cut])
        self._stream(row)
        if cut < len(new) and not out.is_finished():
            self.manager.cancel_request(row.rid)  # a stop token the manager does not know (pad)
        if out.is_finished() or cut < len(new):
            self._finish(row, None)

    def _stream(self, row: _Row) -> None:
        job = row.job
        job.tokens = len(row.ids)
        if job.tokens and job.first_token is None:
            job.first_token = time.perf_counter()
            self.on_first_token(job)
        text = self.generator.tokenizer.decode(row.ids, skip_special_tokens=True)
        if len(text) > row.sent and not text.endswith("\ufffd"):  # wait for the rest of a split character
            job.chunks.put_nowait(text[row.sent:])
            row.sent = len(text)

    def _expire(self, row: _Row) -> None:
        if row.rid in self.active:
            self.manager.cancel_request(row.rid)
            self._finish(row, TimeoutError(f"generation passed its deadline of {self.deadline_s:g} s"))

    def _finish(self, row: _Row, error: Exception | None) -> None:
        """Settle the job (its text so far, or ``error``) and close the busy period when it was the last."""
        if self.active.pop(row.rid, None) is None:
            return
        if row.timer is not None:
            row.timer.cancel()
        with self.manager.output_router._lock:  # the manager drops a handler only when its request finishes
            self.manager.output_router.result_handlers.pop(row.rid, None)
        settle_job(row.job, error or (decode_texts(self.generator.tokenizer, [row.ids])[0], len(row.ids)))
        start, served, tokens = self.period
        self.period = (start, served + 1, tokens + len(row.ids))
        self.step_seconds = 0.8 * self.step_seconds + 0.2 * (time.perf_counter() - row.job.submitted)
        if not self.active:
            self.on_batch(served + 1, time.perf_counter() - start, tokens + len(row.ids))
            self.idle.set()

    def _cancel(self, rid: str, loop: asyncio.AbstractEventLoop) -> None:
        """From any thread: stop the row in the manager and settle it with what it has generated."""
        self.manager.cancel_request(rid)
        loop.call_soon_threadsafe(lambda: self._finish(self.active[rid], None) if rid in self.active else None)


def _cb_config(generator: Generator, max_batch_size: int) -> ContinuousBatchingConfig:
    """A cache sized for ``max_batch_size`` sequences of the run's longest prompt plus its longest answer.

    Sized explicitly: left to itself the manager measures free memory and warms up for many seconds on CPU."""
    longest = generator.max_length + generator.settings.max_new_tokens_limit
    pages = math.ceil(longest / _PAGE_TOKENS)
    return ContinuousBatchingConfig(page_size=_PAGE_TOKENS, num_blocks=max_batch_size * pages + 1,
                                    max_requests_per_batch=max_batch_size,
                                    max_batch_tokens=max(longest, max_batch_size * 64),
                                    use_cuda_graph=False, use_async_batching=False, scheduler_type="fifo")


def generation_batcher(generator: Generator, settings: ServeConfig, on_batch, on_first_token):
    """The batcher ``settings.generate_batching`` asks for; continuous only where the run allows (see above)."""
    s = settings
    static = GenerationBatcher(generator, s.max_batch_size, s.generate_wait_ms, on_batch=on_batch,
                               on_first_token=on_first_token, max_queue=s.generate_max_queue)
    if s.generate_batching == "static" or not generator.decoder_only \
            or not continuous_fits(generator.config_for()):
        return static
    return ContinuousBatcher(generator, static, s.max_batch_size, s.generate_max_queue, s.request_timeout_s,
                             on_batch=on_batch, on_first_token=on_first_token)
