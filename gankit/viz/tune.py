"""``gankit tune``: hyper-parameter search on Optuna (an optional dependency).

We lean on Optuna rather than a search of our own: its samplers and pruners are well tried,
and its RDB storage is the meeting point of workers. Every ``gankit tune`` process given the
same ``--storage`` and ``--study`` joins one study, whether on this machine (SQLite) or on many
(PostgreSQL), and together they stop at ``--trials`` finished trials.

Each trial trains in this process; each evaluation during training (``eval.every``) is
reported to Optuna, whose pruner may stop a trial that trails the others.
"""
from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

from gankit.errors import GankitError

KINDS = ("float", "log", "int", "choice")


def parse_space(specs: list[str]) -> dict[str, tuple[str, list[str]]]:
    """``key=float:LO:HI``, ``key=log:LO:HI``, ``key=int:LO:HI``, ``key=choice:a,b`` ->
    ``{key: (kind, args)}``."""
    space = {}
    for spec in specs:
        key, _, rest = spec.partition("=")
        kind, _, args = rest.partition(":")
        if not key or kind not in KINDS or not args:
            raise GankitError(f"--param '{spec}' must look like key=float:LO:HI, key=log:LO:HI, "
                              "key=int:LO:HI or key=choice:a,b,c")
        values = args.split(",") if kind == "choice" else args.split(":")
        if kind != "choice":
            try:
                lo, hi = (int(v) if kind == "int" else float(v) for v in values)
            except ValueError:
                raise GankitError(f"--param '{spec}': LO and HI must be two numbers") from None
            if not lo < hi or (kind == "log" and lo <= 0):
                raise GankitError(f"--param '{spec}': need LO < HI (and LO > 0 for log)")
        space[key] = (kind, values)
    if not space:
        raise GankitError("give at least one --param to search over")
    return space


def suggest(trial: Any, space: dict[str, tuple[str, list[str]]]) -> list[str]:
    """The trial's choice for every key, as ``key=value`` overrides."""
    out = []
    for key, (kind, args) in space.items():
        if kind == "choice":
            value = trial.suggest_categorical(key, args)
        elif kind == "int":
            value = trial.suggest_int(key, int(args[0]), int(args[1]))
        else:
            value = trial.suggest_float(key, float(args[0]), float(args[1]), log=kind == "log")
        out.append(f"{key}={value}")
    return out


def _import_optuna():
    try:
        import optuna
    except ImportError:
        raise GankitError("gankit tune needs Optuna: pip install optuna (or pip install -e '.[tune]')") from None
    return optuna


def make_objective(preset: str, overrides: list[str], space, metric: str, out: Path, optuna):
    """The function Optuna calls per trial: train one run, return its final ``metric``."""
    from gankit.config import load_config
    from gankit.training.trainer import Trainer

    class TrialTrainer(Trainer):
        trial: Any = None

        def evaluate(self, final: bool = False) -> dict[str, float]:
            results = super().evaluate(final)
            if not final and metric in results and math.isfinite(results[metric]):
                self.trial.report(results[metric], self.step)
                if self.trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at step {self.step}")
            self.last_results = results
            return results

    def objective(trial) -> float:
        cfg = load_config(preset, overrides + suggest(trial, space))
        trainer = TrialTrainer(cfg, out / f"trial_{trial.number:04d}")
        trainer.trial = trial
        trainer.fit()
        value = getattr(trainer, "last_results", {}).get(metric)
        if value is None:
            raise GankitError(f"metric '{metric}' was not computed; set eval.metrics so that it is "
                              f"(got {sorted(getattr(trainer, 'last_results', {}))})")
        return value

    return objective


def _open_study(optuna, name: str, storage: str | None, direction: str):
    """Create the study or join it. Workers starting together race to create the database's
    tables; the loser's error is transient, so it tries again once the winner is done."""
    for attempt in range(5):
        try:
            return optuna.create_study(study_name=name, storage=storage, direction=direction,
                                       load_if_exists=True,
                                       pruner=optuna.pruners.MedianPruner(n_warmup_steps=1))
        except Exception as e:  # sqlalchemy's IntegrityError / OperationalError
            if attempt == 4 or not type(e).__module__.startswith("sqlalchemy"):
                raise
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


def run_tune(preset: str, overrides: list[str], params: list[str], metric: str, trials: int,
             storage: str | None, study_name: str, out: Path, direction: str = "auto",
             echo=print) -> int:
    """Join (or create) the study and work on it until it holds ``trials`` finished trials."""
    optuna = _import_optuna()
    from gankit.metrics.compute import HIGHER

    space = parse_space(params)
    if direction == "auto":
        direction = "maximize" if metric.split("/")[-1] in HIGHER else "minimize"
    if trials < 1:
        raise GankitError(f"--trials must be at least 1, got {trials}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _open_study(optuna, study_name, storage, direction)
    objective = make_objective(preset, overrides, space, metric, out, optuna)
    stop = optuna.study.MaxTrialsCallback(trials, states=(optuna.trial.TrialState.COMPLETE,
                                                          optuna.trial.TrialState.PRUNED))
    study.optimize(objective, callbacks=[stop], catch=())
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        echo("no trial finished")
        return 1
    best = study.best_trial
    echo(f"study '{study_name}': {len(study.trials)} trials; best {metric} = {best.value:.4g} "
         f"(trial {best.number}): " + " ".join(f"{k}={v}" for k, v in best.params.items()))
    return 0
