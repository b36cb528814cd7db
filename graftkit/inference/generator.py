"""Text generation over a run whose task generates (causal_lm, seq2seq): batched, streamed, cancellable.

The decoding settings come from the run folder's ``generation_config.json`` (written from
``task.generation`` at training time); per-call overrides are validated against the run's
``max_new_tokens_limit``. As a :class:`~graftkit.inference.base.RunInference` it predicts
``GeneratedText`` for the evaluator, ``graftkit predict`` and file prediction.
"""
from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from graftkit.errors import RunFolderError
from graftkit.inference.base import RunInference
from graftkit.inference.run_model import load_run_model
from graftkit.modeling.generation import decode_texts, generate_ids, input_key
from graftkit.tasks.capabilities import Generates
from graftkit.tasks.predictions import GeneratedText


class Cancelled(StoppingCriteria):
    """Stops generation once ``event`` is set (a client went away, Ctrl-C); per row when ``rows`` is given."""

    def __init__(self, event: threading.Event | None = None, rows: list[threading.Event] | None = None):
        self.event, self.rows = event, rows

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        if self.rows is not None:
            return torch.tensor([e.is_set() for e in self.rows], device=input_ids.device)
        return torch.full((input_ids.shape[0],), bool(self.event and self.event.is_set()), device=input_ids.device)


class Generator(RunInference):
    """Load a generative run folder once, then generate for any number of inputs.

    Args:
        run_dir: a finished run whose task generates (full model or adapter run).
        backend: "torch" (generation has no ONNX path).

    Raises:
        UnsupportedError: the run's task does not generate.
        RunFolderError: another backend was asked for.
    """

    def __init__(self, run_dir: str | Path, backend: str = "torch"):
        if backend != "torch":
            raise RunFolderError(f"generation runs on the torch backend only (got '{backend}'); ONNX export of "
                                 "generative runs is not available, see README 'Generation'")
        super().__init__(run_dir)
        self.generation = self.task.capability(Generates, "generate")
        self.model = load_run_model(self.run.path, self.task).eval()
        self.settings = self.generation.settings()
        path = self.run.path / "generation_config.json"
        self.generation_config = GenerationConfig.from_pretrained(str(self.run.path)) if path.is_file() \
            else self.generation.generation_config(self.tokenizer, self.model.config)
        self.lock = threading.Lock()  # one generate() at a time on this model (the server batches requests)
        #: decoding overrides every predict / predict_batch call uses (``with_overrides``)
        self.overrides: dict[str, Any] = {}

    @property
    def decoder_only(self) -> bool:
        return self.generation.decoder_only

    @property
    def takes_chat(self) -> bool:
        """Inputs are chat message lists (a chat-trained causal_lm run) rather than prompt strings."""
        return self.generation.takes_chat

    def input_columns(self) -> tuple[str, str | None]:
        """A file's inputs: the run's prompt column, or its messages column for a chat run."""
        t = self.cfg.task
        return (t.messages_column if self.takes_chat else t.prompt_column), None

    def with_overrides(self, **overrides: Any) -> "Generator":
        """A view of this generator (same model) whose predictions use ``overrides`` (checked against the
        run's limits now); the overrides are part of its resume fingerprint."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        self.config_for(**overrides)
        view = copy.copy(self)
        view.overrides = overrides
        view.backend_name = "torch " + json.dumps(overrides, sort_keys=True)
        return view

    # -- settings
    def config_for(self, **overrides: Any) -> GenerationConfig:
        """The run's ``generation_config.json`` with ``overrides`` applied (checked against the run's limits
        first: ConfigError)."""
        self.settings.override(**overrides)
        gc = copy.deepcopy(self.generation_config)
        gc.update(**{k: v for k, v in overrides.items() if v is not None})
        return gc

    def prompt_ids(self, inputs: Sequence[Any]) -> list[list[int]]:
        return self.generation.prompt_ids(inputs, self.tokenizer)

    def prompt_tokens(self, x: Any) -> int:
        """Untruncated token count of one input (the server's prompt-length cap)."""
        return self.generation.prompt_tokens(x, self.tokenizer)

    # -- batched
    def generate(self, inputs: Sequence[Any], batch_size: int = 16, progress: Callable[[int], None] | None = None,
                 cancel: threading.Event | None = None, **overrides: Any) -> list[str]:
        """Generated text for each input, in input order (equal inputs are generated once)."""
        gc = self.config_for(**overrides)
        out: list[str] = []
        for start in range(0, len(inputs), batch_size):
            chunk = list(inputs[start:start + batch_size])
            with self.lock:
                ids = generate_ids(self.model, self.prompt_ids(chunk), gc, self.decoder_only,
                                   stopping_criteria=StoppingCriteriaList([Cancelled(cancel)]))
            out += decode_texts(self.tokenizer, ids)
            if progress:
                progress(len(chunk))
        return out

    def predict_batch(self, inputs: Sequence[Any]) -> list[GeneratedText]:
        """One generated text per input (``POST /v1/predict`` on a generative run, file prediction)."""
        return [GeneratedText(t) for t in self.generate(list(inputs), max(len(inputs), 1), **self.overrides)]

    def predict(self, inputs: Sequence[Any], batch_size: int = 16,
                progress: Callable[[int], None] | None = None) -> list[GeneratedText]:
        """One generated text per input; each distinct input is generated once."""
        unique = {input_key(x): x for x in inputs}
        texts = dict(zip(unique, self.generate(list(unique.values()), batch_size, **self.overrides)))
        if progress:
            progress(len(inputs))
        return [GeneratedText(texts[input_key(x)]) for x in inputs]

    # -- streaming
    def stream(self, x: Any, cancel: threading.Event | None = None, **overrides: Any) -> Iterator[str]:
        """Text chunks for one input as they are produced; setting ``cancel`` stops generation."""
        gc = self.config_for(**overrides)
        cancel = cancel or threading.Event()
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=self.decoder_only, skip_special_tokens=True)
        failure: list[BaseException] = []

        def work():
            try:
                with self.lock:
                    generate_ids(self.model, self.prompt_ids([x]), gc, self.decoder_only, streamer=streamer,
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
