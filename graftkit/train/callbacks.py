"""Trainer callbacks of graftkit's own (the rest come from transformers)."""
from __future__ import annotations

import signal

from transformers import TrainerCallback


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
            from graftkit.train.distributed import any_rank

            self.requested = any_rank(self.requested, args.device)
        if self.requested:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kw):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
