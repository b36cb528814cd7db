"""Trainer callbacks of graftkit's own (the rest come from transformers), and the components that turn
transformers' early stopping and TensorBoard logging on."""
from __future__ import annotations

import signal
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from torch.utils.tensorboard import SummaryWriter
from transformers import EarlyStoppingCallback, TrainerCallback
from transformers.integrations import TensorBoardCallback

from graftkit.progress import progress_bar
from graftkit.train.components import Callbacks
from graftkit.train.distributed import any_rank, is_main_process


class GracefulStop(TrainerCallback):
    """First Ctrl-C / SIGTERM: save a checkpoint at the end of the current step and stop cleanly.

    A second signal falls through to the default handler, so an impatient user can still kill.
    """

    def __init__(self):
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def on_train_begin(self, args, state, control, **kw):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside a server); nothing to install
                pass

    def on_step_end(self, args, state, control, **kw):
        if args.world_size > 1:  # all ranks stop at the same step, or DDP waits forever for the one that stopped
            self.requested = any_rank(self.requested, args.device)
        if self.requested:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kw):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class TrainingProgress(TrainerCallback):
    """One progress bar for the training stage (step, loss, ETA), and one line per evaluation.

    Replaces transformers' tqdm bar and its printed log dicts (``disable_tqdm`` is set, and the
    trainer drops its PrinterCallback), so a log file gets readable lines instead of redraws.
    """

    def __init__(self, log: Callable[[str], None] = print):
        self.log = log
        self._stack: ExitStack | None = None
        self._advance = None
        self._loss: float | None = None

    def on_train_begin(self, args, state, control, **kw):
        if state.is_world_process_zero:
            self._stack = ExitStack()
            self._advance = self._stack.enter_context(progress_bar(state.max_steps, "training"))
            if state.global_step:  # resumed: the bar starts where the checkpoint left off
                self._advance(state.global_step)

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            self._loss = float(logs["loss"])

    def on_step_end(self, args, state, control, **kw):
        if self._advance is not None:
            self._advance(1, **({"loss": f"{self._loss:.4f}"} if self._loss is not None else {}))

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        if state.is_world_process_zero and metrics:
            shown = {k.removeprefix("eval_"): v for k, v in metrics.items()
                     if isinstance(v, float) and k != "epoch" and not k.endswith(("_runtime", "_per_second"))}
            self.log(f"epoch {state.epoch:.2f} validation: " + ", ".join(f"{k}={v:.4f}" for k, v in shown.items()))

    def on_train_end(self, args, state, control, **kw):
        if self._stack is not None:
            self._stack.close()
            self._stack, self._advance = None, None


class EarlyStopping(Callbacks):
    """``train.early_stopping``: stop when the selection metric stops improving (transformers' callback)."""

    name = "early_stopping"
    keys = ("train.early_stopping.patience", "train.early_stopping.threshold")

    def __init__(self, settings):
        super().__init__([EarlyStoppingCallback(settings.patience, settings.threshold)])


class TensorBoard(Callbacks):
    """``train.report_to: [tensorboard]``: event files in the run's ``logs/``, written by the main process only
    (the other trackers are TrainingArguments' ``report_to``)."""

    name = "tensorboard"
    keys = ("train.report_to",)

    def __init__(self, logs: Path):
        super().__init__([TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(logs)))])


def tensorboard(report_to: list[str], logs: Path) -> list[TensorBoard]:
    """The TensorBoard component when ``report_to`` names it, in the process that writes the run folder."""
    return [TensorBoard(logs)] if "tensorboard" in report_to and is_main_process() else []
