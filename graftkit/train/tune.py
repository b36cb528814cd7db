"""Hyper-parameter search with Optuna: TPE sampling, median pruning on the validation metric,
a resumable SQLite study, a results table and the best config written out.

The search space lives in the config (``tune.space``), keyed by dotted config keys::

    tune:
      trials: 20
      space:
        train.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
        train.batch_size: {type: categorical, choices: [16, 32]}
        peft.r: {type: int, low: 4, high: 32}

Each trial is an ordinary run in ``<output_dir>/<name>-tune/trials/trial-NNN``.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import yaml
from transformers import TrainerCallback

from graftkit.config import SearchParam, greater_is_better, set_dotted
from graftkit.errors import ConfigError, GraftkitError
from graftkit.io import write_csv, write_json, write_text
from graftkit.tasks import build_task
from graftkit.tasks.run_config import RunConfig, config_from_dict
from graftkit.train.arguments import selection_metric
from graftkit.train.trainer import train


class OptunaPruning(TrainerCallback):
    """Reports the validation metric to Optuna after each evaluation; stops a trial Optuna prunes."""

    def __init__(self, trial, metric: str, greater_is_better: bool):
        self.trial, self.key, self.greater = trial, f"eval_{metric}", greater_is_better
        self.best: float | None = None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        import optuna

        if not metrics or self.key not in metrics:
            raise ConfigError(f"tune.metric: validation metrics have no '{self.key[5:]}' "
                              f"(available: {', '.join(k[5:] for k in metrics or {} if k.startswith('eval_'))})")
        value = float(metrics[self.key])
        if self.best is None or (value > self.best if self.greater else value < self.best):
            self.best = value
        self.trial.report(value, step=state.global_step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.key}={value:.4f} at step {state.global_step}")


def suggest(trial, key: str, p: SearchParam) -> Any:
    """One value for ``key`` from Optuna's sampler."""
    if p.type == "categorical":
        return trial.suggest_categorical(key, p.choices)
    if p.type == "int":
        return trial.suggest_int(key, int(p.low), int(p.high), log=p.log)
    return trial.suggest_float(key, p.low, p.high, log=p.log)


def _validate_space(cfg: RunConfig, base: dict) -> None:
    """Every key must be a real config key and every extreme value a valid setting (fails before training)."""
    if cfg.tune is None:
        raise ConfigError("graftkit tune needs a `tune:` section with a search space "
                          "(configs/tune-sentiment.yaml shows one)")
    if not cfg.tune.space:
        raise ConfigError("tune.space is empty: declare at least one parameter, e.g. "
                          "train.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}")
    if not cfg.data.validation and cfg.data.split.validation == 0 and cfg.data.hub is None:
        raise ConfigError("tune: trials are compared on validation data; set data.validation or data.split.validation")
    for key, p in cfg.tune.space.items():
        values = p.choices if p.type == "categorical" else [p.low, p.high]
        for v in values:
            tree = copy.deepcopy(base)
            v = int(v) if p.type == "int" else v
            try:
                set_dotted(tree, key, v)
            except ConfigError as err:
                raise ConfigError(f"tune.space.{key}: {err}") from None
            try:
                config_from_dict(tree, f"tune.space.{key}={v!r}")
            except ConfigError as err:
                raise ConfigError(str(err)) from None


def tune(cfg: RunConfig, trials: int | None = None, log: Callable[[str], None] = print) -> dict:
    """Run (or continue) the study until ``trials`` trials have finished; write results and the best config.

    Args:
        cfg: a run config with a ``tune`` section.
        trials: total number of finished trials wanted (default ``tune.trials``); a rerun continues.

    Returns:
        {"best_value", "best_params", "best_config", "results", "study"}.
    """
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback


    base = cfg.model_dump(mode="json")
    base["tune"] = None
    _validate_space(cfg, base)
    tc = cfg.tune
    metric = tc.metric if tc.metric != "auto" else selection_metric(cfg, build_task(cfg.task, cfg.data))
    greater = greater_is_better(metric)
    out = Path(cfg.output_dir) / f"{cfg.name}-tune"
    out.mkdir(parents=True, exist_ok=True)
    # a trial whose process died stops its heartbeat; the next run marks it failed and retries it once
    with warnings.catch_warnings():  # the heartbeat API is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = RDBStorage(f"sqlite:///{out / 'study.db'}", heartbeat_interval=60, grace_period=180,
                             failed_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2) if tc.pruner == "median" else optuna.pruners.NopPruner()
    study = optuna.create_study(study_name=cfg.name, storage=storage, load_if_exists=True,
                                direction="maximize" if greater else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=tc.seed), pruner=pruner)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    wanted = trials or tc.trials
    if done:
        log(f"tune: resuming study {out / 'study.db'} with {done} finished trials")

    config_errors: list[ConfigError] = []  # a setting no trial can satisfy (a tune.metric typo) ends the study

    def objective(trial) -> float:
        try:
            return run_trial(trial)
        except ConfigError as err:
            config_errors.append(err)
            trial.study.stop()
            raise

    def run_trial(trial) -> float:
        tree = copy.deepcopy(base)
        for key, p in tc.space.items():
            set_dotted(tree, key, suggest(trial, key, p))
        tree.update(name=f"trial-{trial.number:03d}", output_dir=str(out / "trials"))
        trial_cfg = config_from_dict(tree, f"trial {trial.number}")
        trial.set_user_attr("run_dir", str(trial_cfg.run_dir))
        cb = OptunaPruning(trial, metric, greater)
        log(f"tune: trial {trial.number} {trial.params}")
        train(trial_cfg, overwrite=True, extra_callbacks=[cb], log=lambda m: None)
        if cb.best is None:
            raise GraftkitError(f"trial {trial.number} never evaluated; tune needs validation data and "
                                "train.eval_strategy epoch or steps")
        log(f"tune: trial {trial.number} {metric}={cb.best:.4f}")
        return cb.best

    if wanted > done:
        study.optimize(objective, n_trials=wanted - done, catch=(GraftkitError,))
    if config_errors:
        raise config_errors[0]
    return write_results(study, base, metric, out, log)


def write_results(study, base: dict, metric: str, out: Path, log: Callable[[str], None] = print) -> dict:
    """results.csv (one row per trial), best.yaml (a complete config) and summary.json."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    keys = sorted({k for t in trials for k in t.params})
    rows = [[t.number, t.state.name.lower(), "" if t.value is None else round(t.value, 6),
             *[t.params.get(k, "") for k in keys], t.user_attrs.get("run_dir", "")] for t in trials]
    write_csv(out / "results.csv", ["trial", "state", metric, *keys, "run_dir"], rows)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise GraftkitError(f"no trial finished (see {out / 'results.csv'})")
    best = study.best_trial
    tree = copy.deepcopy(base)
    for k, v in best.params.items():
        set_dotted(tree, k, v)
    tree["name"] = f"{base['name']}-best"
    tree.pop("tune", None)
    text = f"# best of {len(trials)} trials: {metric}={best.value:.4f} (trial {best.number})\n"
    write_text(out / "best.yaml", text + yaml.safe_dump(tree, sort_keys=False, allow_unicode=True))
    summary = {"metric": metric, "best_value": best.value, "best_params": best.params, "best_trial": best.number,
               "best_config": str(out / "best.yaml"), "results": str(out / "results.csv"),
               "study": str(out / "study.db"), "trials": len(trials),
               "states": {s: sum(t.state.name.lower() == s for t in trials) for s in ("complete", "pruned", "fail")}}
    write_json(out / "summary.json", summary)
    log(f"tune: best {metric}={best.value:.4f} with {best.params} → {out / 'best.yaml'}")
    return summary
