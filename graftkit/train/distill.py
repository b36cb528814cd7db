"""Knowledge distillation (``train.distill``): a student learns from a teacher run's soft labels.

The student's training loss is ``alpha * task_loss + (1 - alpha) * T² * KL(teacher/T ‖ student/T)``
(Hinton et al., 2015), computed inside graftkit's one Trainer path: the :class:`Distillation` component
is a loss transform (graftkit/train/components.py) that hands each training batch to :meth:`Distiller.loss`.
Evaluation batches use the task loss only, so validation numbers stay comparable with an undistilled run.

* The teacher is any run folder graftkit can load (full, adapter, bottleneck, ensemble): it is
  loaded through :class:`graftkit.inference.predictor.Predictor` and run on every batch. Its
  logits are never cached to disk (so never pickled).
* What is compared is the task's ``Distills`` capability: classification (single-label) distils the
  sequence logits; NER distils token logits at the
  labelled positions (labels != -100: the first piece of each word), the positions its metric counts.
  With a CRF head these are its emission scores: the transition matrix learns from the gold tags only.
* ``unlabelled``: a text file (one text per line) or any readable file with a text column; its
  texts join the training set with no gold label (classification), so only the KD term learns from them.
* The teacher must have the student's task, labels (same order), tokenizer vocabulary and
  normalisation, and read ``data.max_length`` positions; each difference is an error before the
  first step.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import datasets
import torch
import torch.nn.functional as F

from graftkit.data.dataset import TEXT_SUFFIXES, Example, Splits, read_documents, read_examples
from graftkit.errors import ConfigError
from graftkit.inference.predictor import Predictor
from graftkit.io import write_text
from graftkit.modeling.outputs import output_logits
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import Distills
from graftkit.train.components import TrainingOnly

#: case, accents, CJK, digits and punctuation: two tokenizers with one vocabulary but another normaliser
#: (cased vs uncased, accents kept or stripped, CJK split or not) encode this text differently
NORMALISATION_PROBE = "Hello WORLD, Café Ünïcode naïve 中文字符 2024-12-02 $3.50! e-mail"


def kd_divergence(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² * KL(softmax(teacher/T) ‖ softmax(student/T))`` averaged over rows (rows = examples or tokens)."""
    t = temperature
    return F.kl_div(F.log_softmax(student.float() / t, -1), F.log_softmax(teacher.float() / t, -1),
                    reduction="batchmean", log_target=True) * t * t


def _rows(logits: torch.Tensor, labels: torch.Tensor | None, token_level: bool) -> torch.Tensor:
    """The rows KD compares: every example, or the labelled token positions."""
    if not token_level:
        return logits
    return logits[labels != -100]


class Distiller:
    """The teacher and the KD settings of one training run (see the module docstring)."""

    def __init__(self, teacher: Predictor, alpha: float, temperature: float, token_level: bool):
        self.teacher = teacher
        self.alpha, self.temperature, self.token_level = alpha, temperature, token_level
        self.model = teacher.backend.model
        self.accepts = teacher.backend.accepts

    @classmethod
    def load(cls, settings, task: Task, tokenizer, max_length: int) -> "Distiller":
        """Load ``settings.teacher`` and check it fits the student (task, labels, tokenizer, positions, width).

        Raises:
            ConfigError: the teacher's task, labels or tokenizer differ, or the task cannot be distilled.
        """
        distills = task.capability(Distills, "train.distill")
        distills.check_student()
        teacher = Predictor(settings.teacher)
        check_compatible(teacher, task, tokenizer, settings.teacher)
        check_positions(teacher, max_length, settings.teacher)
        distiller = cls(teacher, settings.alpha, settings.temperature, token_level=distills.token_level)
        distiller.check_width(tokenizer, len(task.labels), settings.teacher)
        return distiller

    def check_width(self, tokenizer, n_labels: int, where: str) -> None:
        """One probe forward: the teacher must give one score per label (an NER "vote" ensemble gives its
        members' scores side by side, which no softmax KL can read)."""
        probe = dict(tokenizer(NORMALISATION_PROBE, return_tensors="pt"))
        width = self._forward(probe).shape[-1]
        if width != n_labels:
            raise ConfigError(f"train.distill.teacher: {where} gives {width} scores per position, the student has "
                              f"{n_labels} labels (an NER ensemble that votes on spans cannot be a teacher: "
                              "rebuild it with `graftkit ensemble --combine mean`, or use one member)")

    def teacher_logits(self, inputs: dict) -> torch.Tensor:
        """The teacher's logits for one training batch."""
        return self._forward(inputs)

    def _forward(self, inputs: dict) -> torch.Tensor:
        feats = {k: v for k, v in inputs.items() if k in self.accepts and k != "labels"}
        with torch.inference_mode():
            out = self.model(**feats)
        return output_logits(out).detach().clone()

    def loss(self, student_logits: torch.Tensor, inputs: dict, task_loss: torch.Tensor) -> torch.Tensor:
        """alpha * task loss + (1 - alpha) * T² KL on this batch (``inputs`` still holds ``labels``)."""
        labels = inputs.get("labels")
        teacher = self.teacher_logits(inputs).to(student_logits.device)
        kd = kd_divergence(_rows(student_logits, labels, self.token_level),
                           _rows(teacher, labels, self.token_level), self.temperature)
        if self.alpha == 0:
            return kd
        if labels is not None and not (labels != -100).any():  # a batch of unlabelled texts: no task loss
            return (1 - self.alpha) * kd
        return self.alpha * task_loss + (1 - self.alpha) * kd


class Distillation(TrainingOnly):
    """A loss transform: the task loss and the teacher's soft labels on the same training batch."""

    name = "distill"
    keys = ("train.distill.teacher", "train.distill.alpha", "train.distill.temperature", "train.distill.unlabelled")
    needs = Distills

    def __init__(self, distiller: Distiller):
        self.distiller = distiller

    def training_loss(self, trainer, model, inputs, num_items, inner):
        loss, outputs = inner(model, inputs, num_items)  # the chain copies the batch: ``labels`` stay here
        return self.distiller.loss(outputs.logits, inputs, loss), outputs


def check_compatible(teacher: Predictor, task: Task, tokenizer, where: str) -> None:
    """Refuse a teacher whose task, labels or vocabulary differ from the student's."""
    t_task = teacher.task
    if type(t_task) is not type(task):
        raise ConfigError(f"train.distill.teacher: {where} is a {t_task.label()} run, the student is {task.label()}; "
                          "a teacher must solve the student's task")
    task.capability(Distills, "train.distill").check_teacher(t_task, where)
    t_vocab, s_vocab = teacher.tokenizer.get_vocab(), tokenizer.get_vocab()
    if t_vocab != s_vocab:
        only_t = len(set(t_vocab) - set(s_vocab))
        only_s = len(set(s_vocab) - set(t_vocab))
        raise ConfigError(f"train.distill.teacher: {where}'s tokenizer differs from the student's ({only_t} tokens "
                          f"only in the teacher's, {only_s} only in the student's, or ids differ); start the "
                          "student from the teacher's tokenizer (e.g. model.name_or_path: the teacher's base "
                          "with the same model.extend_vocab)")
    t_ids, s_ids = teacher.tokenizer(NORMALISATION_PROBE)["input_ids"], tokenizer(NORMALISATION_PROBE)["input_ids"]
    if t_ids != s_ids:
        raise ConfigError(f"train.distill.teacher: {where}'s tokenizer normalises text differently from the "
                          f"student's (same vocabulary, but {NORMALISATION_PROBE!r} encodes to other pieces: "
                          "lower-casing or accent stripping differ); use the teacher's tokenizer for the student")


def check_positions(teacher: Predictor, max_length: int, where: str) -> None:
    """Refuse a teacher that cannot read the student's longest rows (it would fail mid-training).
    An ensemble's combined module has no config of its own, so ensembles are not checked here."""
    config = getattr(teacher.backend.model, "config", None)
    limit = getattr(config, "max_position_embeddings", None)
    if isinstance(limit, int) and max_length > limit:
        raise ConfigError(f"train.distill.teacher: {where} reads at most {limit} positions, the student's "
                          f"data.max_length is {max_length}; set data.max_length to {limit} or less")


def read_unlabelled(path: str, data_cfg) -> list[Example]:
    """The texts of ``train.distill.unlabelled``: a .txt file (one per line) or any file with a text column."""
    if Path(path).suffix.lower() in TEXT_SUFFIXES:
        return read_documents(path, data_cfg.encoding)
    return read_examples(path, data_cfg, with_labels=False)[0]


def throughput(predictor: Predictor, inputs: list, batch_size: int = 64) -> float:
    """Inputs per second of ``predictor`` over ``inputs`` (one warm-up batch first)."""
    predictor.predict(inputs[:batch_size], batch_size=batch_size)
    t0 = time.perf_counter()
    predictor.predict(inputs, batch_size=batch_size)
    return len(inputs) / max(time.perf_counter() - t0, 1e-9)


def parameter_count(predictor: Predictor) -> int:
    return sum(p.numel() for p in predictor.backend.model.parameters())


def distillation_report(student_dir: Path, teacher_dir: str, examples: list[Example], metric: str,
                        batch_size: int = 64, log: Callable[[str], None] = print, split: str = "test") -> dict:
    """Retention (student metric / teacher metric on the same examples of ``split``), speed-up and size ratio."""
    student, teacher = Predictor(student_dir), Predictor(teacher_dir)
    inputs = [student.task.input_of(e) for e in examples]
    scores = {}
    for name, p in (("student", student), ("teacher", teacher)):
        result = p.task.report(examples, p.predict(inputs, batch_size=batch_size), None, plots=False)
        scores[name] = {k: v for k, v in result.items() if isinstance(v, float)}
    speed = {name: throughput(p, inputs, batch_size) for name, p in (("student", student), ("teacher", teacher))}
    sizes = {"student": parameter_count(student), "teacher": parameter_count(teacher)}
    student_metric, teacher_metric = scores["student"].get(metric), scores["teacher"].get(metric)
    report = {"teacher": str(teacher_dir), "metric": metric, "student_metric": student_metric,
              "teacher_metric": teacher_metric, "student_scores": scores["student"],
              "teacher_scores": scores["teacher"],
              "retention": student_metric / teacher_metric if teacher_metric else None,
              "student_per_second": speed["student"], "teacher_per_second": speed["teacher"],
              "speed_up": speed["student"] / speed["teacher"], "student_parameters": sizes["student"],
              "teacher_parameters": sizes["teacher"], "size_ratio": sizes["student"] / sizes["teacher"],
              "examples": len(examples), "split": split}
    log(f"distillation: retention {report['retention']:.3f} ({metric} {student_metric:.4f} vs teacher "
        f"{teacher_metric:.4f}), {report['speed_up']:.2f}x the teacher's throughput, "
        f"{report['size_ratio']:.2f}x its size")
    return report


def card_section(report: dict) -> str:
    """The model card's "Distillation" section."""
    f = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join([
        "## Distillation", "",
        f"Student of `{report['teacher']}`, compared on the same {report['examples']} {report['split']} examples.", "",
        "| | student | teacher | ratio |", "| --- | --- | --- | --- |",
        f"| {report['metric']} | {f(report['student_metric'])} | {f(report['teacher_metric'])} | "
        f"{f(report['retention'])} (retention) |",
        f"| examples / second | {report['student_per_second']:.1f} | {report['teacher_per_second']:.1f} | "
        f"{report['speed_up']:.2f}x (speed-up) |",
        f"| parameters | {report['student_parameters']:,} | {report['teacher_parameters']:,} | "
        f"{report['size_ratio']:.2f} (size) |", ""])


def prepare_distillation(cfg, task: Task, tokenizer, train_ds, log: Callable[[str], None] = print):
    """(Distillation component, training set plus ``train.distill.unlabelled``'s texts) for a run with
    ``train.distill``.

    Raises:
        ConfigError: the teacher does not fit the student, or ``train.rdrop`` is also set.
    """
    if cfg.train.rdrop:
        raise ConfigError("train.distill and train.rdrop both change the training loss; set train.rdrop to 0")
    distiller = Distiller.load(cfg.train.distill, task, tokenizer, cfg.data.max_length)
    path = cfg.train.distill.unlabelled
    if not path:
        return Distillation(distiller), train_ds
    examples = read_unlabelled(path, cfg.data)
    extra = task.capability(Distills, "train.distill").unlabelled_dataset(examples, tokenizer, cfg.data.max_length)
    log(f"train.distill: {len(examples)} unlabelled texts from {path} join training with the teacher's soft labels")
    return Distillation(distiller), datasets.concatenate_datasets([train_ds, extra.cast(train_ds.features)])


def finish_distillation(run, cfg, splits: Splits, metric: str, log: Callable[[str], None] = print) -> dict | None:
    """Measure retention / speed-up / size against the teacher; into metrics.json and the model card.

    Runs inside ``finalize_run`` before COMPLETE is written (a complete distilled run always holds the
    report), on the test split, or the validation split when there is no test split.
    """
    split, examples = ("test", splits.test) if splits.test else ("validation", splits.validation)
    if not examples:
        log("train.distill: no test or validation examples, so retention against the teacher is not measured")
        return None
    report = distillation_report(run.path, cfg.train.distill.teacher, examples, metric, cfg.eval.batch_size, log,
                                 split)
    run.update_metrics(distillation=report)
    write_text(run.card, run.card.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + card_section(report))
    return report
