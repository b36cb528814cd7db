"""Text generation over a causal_lm or seq2seq run folder: batched, streamed, cancellable.

The decoding settings come from the run folder's ``generation_config.json`` (written from
``task.generation`` at training time); per-call overrides are validated against the run's
``max_new_tokens_limit``. ``predict``/``iter_predict`` give the evaluator and file prediction the
same interface as :class:`graftkit.inference.predictor.Predictor`, with ``{"generated": text}`` dicts.
"""
from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from transformers import AutoTokenizer, GenerationConfig, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from graftkit.errors import RunFolderError
from graftkit.inference.predictor import Predictor, load_run_config, load_task
from graftkit.inference.run_model import load_run_model
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks import TASKS
from graftkit.tasks.causal_lm.preprocess import prompt_ids as causal_prompt_ids
from graftkit.tasks.generation.decode import decode_texts, generate_ids
from graftkit.tasks.generation.metrics import input_key


class Cancelled(StoppingCriteria):
    """Stops generation once ``event`` is set (a client went away, Ctrl-C); per row when ``rows`` is given."""

    def __init__(self, event: threading.Event | None = None, rows: list[threading.Event] | None = None):
        self.event, self.rows = event, rows

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        if self.rows is not None:
            return torch.tensor([e.is_set() for e in self.rows], device=input_ids.device)
        return torch.full((input_ids.shape[0],), bool(self.event and self.event.is_set()), device=input_ids.device)


class Generator:
    """Load a generative run folder once, then generate for any number of inputs.

    Args:
        run_dir: a finished causal_lm or seq2seq run folder (full model or adapter run).
    """

    def __init__(self, run_dir: str | Path, backend: str = "torch"):
        if backend != "torch":
            raise RunFolderError(f"generation runs on the torch backend only (got '{backend}'); ONNX export of "
                                 "generative runs is not available, see README 'Generation'")
        self.run = RunFolder(run_dir).require_model()
        self.cfg = load_run_config(self.run)
        self.task = load_task(self.run, self.cfg)
        if not getattr(self.task, "generative", False):
            raise RunFolderError(f"{self.run.path} is a {self.task.name} run; `generate` needs a causal_lm or "
                                 "seq2seq run (use `graftkit predict`)")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.run.path))
        self.model = load_run_model(self.run.path, self.task).eval()
        self.settings = self.cfg.task.generation
        self.max_length = self.cfg.data.max_length
        path = self.run.path / "generation_config.json"
        self.generation_config = GenerationConfig.from_pretrained(str(self.run.path)) if path.is_file() \
            else self.task.generation_config(self.tokenizer, self.model.config)
        self.lock = threading.Lock()  # one generate() at a time on this model (the server batches requests)

    # -- settings
    def config_for(self, **overrides: Any) -> GenerationConfig:
        """The run's ``generation_config.json`` with ``overrides`` applied (checked against the run's limits
        first: ConfigError)."""
        self.settings.override(**overrides)
        gc = copy.deepcopy(self.generation_config)
        gc.update(**{k: v for k, v in overrides.items() if v is not None})
        return gc

    def prompt_ids(self, inputs: Sequence[Any]) -> list[list[int]]:
        return self.task.prompt_ids(inputs, self.tokenizer)

    def prompt_tokens(self, x: Any) -> int:
        """Untruncated token count of one input (the server's prompt-length cap)."""
        if self.task.decoder_only:
            return len(causal_prompt_ids(self.tokenizer, x))
        return len(self.tokenizer(x)["input_ids"])

    # -- batched
    def generate(self, inputs: Sequence[Any], batch_size: int = 16, progress: Callable[[int], None] | None = None,
                 cancel: threading.Event | None = None, **overrides: Any) -> list[str]:
        """Generated text for each input, in input order (equal inputs are generated once)."""
        gc = self.config_for(**overrides)
        out: list[str] = []
        for start in range(0, len(inputs), batch_size):
            chunk = list(inputs[start:start + batch_size])
            with self.lock:
                ids = generate_ids(self.model, self.prompt_ids(chunk), gc, self.task.decoder_only,
                                   stopping_criteria=StoppingCriteriaList([Cancelled(cancel)]))
            out += decode_texts(self.tokenizer, ids)
            if progress:
                progress(len(chunk))
        return out

    def predict_batch(self, inputs: Sequence[Any]) -> list[dict]:
        """Predictor-compatible: one ``{"generated": text}`` per input (``POST /v1/predict`` on a generative run)."""
        return [{"generated": t} for t in self.generate(list(inputs), max(len(inputs), 1))]

    def predict(self, inputs: Sequence[Any], batch_size: int = 16,
                progress: Callable[[int], None] | None = None) -> list[dict]:
        """Predictor-compatible: ``{"generated": text}`` per input; each distinct input is generated once."""
        unique = {input_key(x): x for x in inputs}
        texts = dict(zip(unique, self.generate(list(unique.values()), batch_size)))
        if progress:
            progress(len(inputs))
        return [{"generated": texts[input_key(x)]} for x in inputs]

    def iter_predict(self, inputs: Iterable[Any], batch_size: int = 16) -> Iterator[tuple[Any, dict]]:
        buf: list[Any] = []
        for x in inputs:
            buf.append(x)
            if len(buf) == batch_size:
                yield from zip(buf, ({"generated": t} for t in self.generate(buf, batch_size)))
                buf = []
        if buf:
            yield from zip(buf, ({"generated": t} for t in self.generate(buf, batch_size)))

    # -- streaming
    def stream(self, x: Any, cancel: threading.Event | None = None, **overrides: Any) -> Iterator[str]:
        """Text chunks for one input as they are produced; setting ``cancel`` stops generation."""
        gc = self.config_for(**overrides)
        cancel = cancel or threading.Event()
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=self.task.decoder_only, skip_special_tokens=True)
        failure: list[BaseException] = []

        def work():
            try:
                with self.lock:
                    generate_ids(self.model, self.prompt_ids([x]), gc, self.task.decoder_only, streamer=streamer,
                                 stopping_criteria=StoppingCriteriaList([Cancelled(cancel)]))
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(err)
                streamer.end()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        try:
            for chunk in streamer:
                if chunk:
                    yield chunk
        finally:
            cancel.set()  # the consumer stopped early (closed generator): stop generating
            thread.join()
        if failure:
            raise failure[0]


def open_run(run_dir: str | Path, backend: str = "torch", **backend_kwargs: Any) -> Predictor | Generator:
    """The inference object of any finished run: a Generator for causal_lm / seq2seq runs, else a Predictor."""
    run = RunFolder(run_dir).require_model()
    if TASKS.get(run.task_state()["task"]).generative:
        return Generator(run.path, backend)
    return Predictor(run.path, backend, **backend_kwargs)
