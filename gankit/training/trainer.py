"""The one training loop. Nothing here knows what a GAN is.

It steps through the model's phase schedule, keeps the EMA, logs means every ``log_every``
steps (the only host-device sync), writes sample grids, evaluates, checkpoints, and can stop
between any two phases (Ctrl-C, SIGTERM) and resume there bit-identically on the CPU.

Under torchrun every rank runs this same loop on its slice of each global batch (see
:mod:`gankit.distributed`); rank 0 alone writes logs, samples and checkpoints,
every rank resumes from the same checkpoint, and a stop request is agreed on by all ranks
at a step boundary.
"""
from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from pathlib import Path
from typing import Any, Callable

import torch

from gankit import distributed, files
from gankit.config import RunConfig, dump_yaml
from gankit.data import build_source
from gankit.errors import (CheckpointError, ConfigError, DataError, GankitError, TrainingDiverged,
                           TrainingInterrupted)
from gankit.models import MODELS
from gankit.models.base import GenerativeModel
from gankit.runtime import resolve_device as runtime_device
from gankit.runtime import describe_amp, resolve_amp, tune_allocator
from gankit.training import lock
from gankit.training.checkpoint import (load_checkpoint, make_checkpoint, restore, save_checkpoint, seed_rngs,
                                        set_rng_state)
from gankit.training.logger import Progress, RunLogger, RunningMeans, non_finite


def resolve_device(name: str) -> torch.device:
    """``train.device`` as a torch device; a bare ``cuda`` is this rank's GPU under torchrun."""
    return runtime_device(name, index=distributed.local_rank())


def build_model(cfg: RunConfig, info) -> GenerativeModel:
    return MODELS.get(cfg.model.kind)(cfg, info)


def check_config(cfg: RunConfig) -> None:
    """Build the data and the model of ``cfg`` on the CPU as training would, then drop them:
    each key is checked by the code that reads it, so ``gankit train --dry-run`` is a full
    check (an unknown loss or norm, a bad size, a missing data folder) without a run folder."""
    from gankit.data.folders import PLANNING

    resolve_device(cfg.train.device)
    planning = PLANNING.set(True)  # a folder says what it holds and would cost, decodes nothing
    try:
        source = build_source(cfg.data, cfg.train.seed, torch.device("cpu"))
    finally:
        PLANNING.reset(planning)
    check_eval_metrics(cfg, source.info)
    model = build_model(cfg, source.info)
    model.configure_optimizers()


def check_eval_metrics(cfg: RunConfig, info) -> None:
    """``eval.metrics`` resolved and what they need loaded (the AFD detector, self-checked):
    a misspelt metric or a broken detector stops the run now, not at its first evaluation."""
    if cfg.eval.metrics:
        from gankit.metrics.anime import with_fid
        from gankit.metrics.compute import check_metric_names

        check_metric_names(with_fid(cfg.eval.metrics), info)


def precision_line(cfg: RunConfig) -> str:
    """What ``train.amp`` stands for on this machine, in words (for ``--dry-run`` and the log)."""
    device = resolve_device(cfg.train.device)
    return describe_amp(cfg.train.amp, resolve_amp(cfg.train.amp, device), device.type)


def lr_factor(step: int, steps: int, decay_start: float) -> float:
    """The learning-rate multiplier at (0-based) ``step`` of ``steps``: 1 until
    ``round(decay_start * steps)``, then falling linearly so that the last step gets
    ``1 / (decay steps)`` and a step past the end would get 0."""
    start = int(round(decay_start * steps))
    if step < start or steps <= start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / (steps - start))


def next_run_dir(root: Path = Path("runs")) -> Path:
    """runs/001, runs/002, ...: the first number not taken (rank 0's choice under torchrun,
    so that ranks listing the folder at different moments agree)."""
    distributed.init_from_env()
    number = 0
    if distributed.is_main():  # root is made by the Trainer, once training can start
        if root.exists() and not root.is_dir():
            raise GankitError(f"cannot create the runs folder '{root}' (File exists); "
                              "give a writable run folder with --out")
        taken = [int(p.name) for p in root.iterdir() if p.name.isdigit()] if root.is_dir() else []
        number = max(taken, default=0) + 1
    return root / f"{distributed.broadcast_int(number):03d}"


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _record_step(line: str) -> float:
    """A JSONL record's step; infinite for a line that is not a whole record."""
    try:
        return float(json.loads(line)["step"])
    except (ValueError, TypeError, KeyError):
        return math.inf


class Trainer:
    """Owns the loop state (step, phase) and the side effects; the model owns the updates."""

    def __init__(self, cfg: RunConfig, run_dir: Path, resume: bool = False):
        tune_allocator()  # API users too; a no-op after the CLI's call
        self.cfg, self.run_dir = cfg, Path(run_dir)
        t = cfg.train
        self.device = resolve_device(t.device)
        distributed.init_from_env()
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if t.threads > 0:
            torch.set_num_threads(t.threads)
        self.amp = resolve_amp(t.amp, self.device)
        if self.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("train.amp=fp16 needs a GPU; use train.amp=bf16 or none on the CPU")
        self.main = distributed.is_main()
        ckpt = self._check_run_dir(resume)
        try:
            self._build(ckpt)
        except BaseException:
            self._abandon_run_dir()
            raise
        self._create_run_dir()

    def _build(self, ckpt: dict[str, Any] | None) -> None:
        """Data, model, optimizers and loop state (restored from ``ckpt`` when resuming)."""
        cfg, t = self.cfg, self.cfg.train
        seed_rngs(t.seed)  # torch, numpy and random; a resume restores all three below
        self.source = build_source(cfg.data, t.seed, self.device, distributed.rank(), distributed.world_size())
        self.info = self.source.info
        check_eval_metrics(cfg, self.info)
        self.model = build_model(cfg, self.info).to(self.device)
        self.model.set_precision(self.amp)
        if t.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if t.sync_bn and distributed.is_distributed():
            self.model = distributed.convert_sync_batchnorm(self.model, self.device.type)
        if t.ema > 0:
            self.model.setup_ema()
        self.model.optimizers = self.model.configure_optimizers()
        # the configured rates, before a checkpoint's (possibly decayed) ones replace them
        self.base_lrs = {name: [g["lr"] for g in opt.param_groups]
                         for name, opt in self.model.optimizers.items()}
        if self.amp == "fp16":
            self.model.setup_scalers("cuda")
        distributed.broadcast_module(self.model)
        self.step, self.phase = 0, 0
        if ckpt is not None:
            restore(self.model, self.source, ckpt, self.ckpt_path)
            self.step, self.phase = int(ckpt["step"]), int(ckpt["phase"])
            set_rng_state(ckpt["rng"])
            if self.device.type == "cuda" and "cuda_rng" in ckpt:
                # rank 0's stream on this rank's own GPU: ranks draw the same global noise
                torch.cuda.set_rng_state(ckpt["cuda_rng"], self.device)
        self.best_value: float | None = self._best_so_far(ckpt)
        if t.compile:
            self._compile()
        self.saved_step = self.step if ckpt is not None else None
        self.stop_requested = False
        self.stop_vote = distributed.StopVote() if distributed.is_distributed() else None
        self.phase_callbacks: list[Callable[[Trainer], None]] = []
        # the logged values since the last log tick, kept on the device; whether they are all
        # finite is read (one host read) only before something leaves the loop (a log tick,
        # grid, evaluation, checkpoint)
        self.running = RunningMeans()
        self.logger = RunLogger(self.run_dir, enabled=self.main, from_step=self.step)
        self.progress = Progress(t.steps, enabled=self.main and t.progress)
        # a scatter of 64 points shows no modes: vector data get a fuller picture
        n_fixed = max(t.n_grid, 1000) if self.info.kind == "vector" else t.n_grid
        self.fixed = self.model.sample_inputs(n_fixed, generator=torch.Generator().manual_seed(t.seed + 7919))

    # ---- run folder ----------------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    def _check_run_dir(self, resume: bool) -> dict[str, Any] | None:
        # lock and probe the folder before any data or model work (one-line errors); remember
        # the folders this makes, so that a run failing on bad input removes them again
        self._made_dirs = [] if resume else _missing_folders(self.run_dir)
        locked = self.main and lock.claim_run_dir(self.run_dir, create=not resume)
        try:
            if resume:
                return load_checkpoint(self.ckpt_path)
            if self.ckpt_path.exists():
                raise CheckpointError(
                    f"'{self.run_dir}' already holds a run; resume it with --resume {self.run_dir} "
                    "or choose another --out"
                )
        except CheckpointError:
            if locked:
                lock.release(self.run_dir)
            raise
        return None

    def _abandon_run_dir(self) -> None:
        """Construction failed (bad data, config or model): unlock, and remove the folders
        this trainer made, which hold nothing but the lock and an empty checkpoints/."""
        if not self.main:
            return
        lock.release(self.run_dir)
        if not self._made_dirs:
            return
        for leftover in (self.run_dir / lock.LOCK_NAME, self.run_dir / "checkpoints"):
            with contextlib.suppress(OSError):
                leftover.unlink() if leftover.is_file() else leftover.rmdir()
        for folder in self._made_dirs:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()

    def _create_run_dir(self) -> None:
        # Only once data, model and optimizers are built: a run that fails on bad input
        # leaves no folder holding a lone config.yaml behind.
        if self.main:
            # which precision train.amp stood for on this machine (a resume may take another)
            line = describe_amp(self.cfg.train.amp, self.amp, self.device.type)
            path = self.run_dir / "config.yaml"
            with self.writing(path), files.replacing(path) as tmp:
                tmp.write_text(dump_yaml(self.cfg) + f"# {line}\n")
            self._drop_records_after(self.step)

    def _drop_records_after(self, step: int) -> None:
        """The records a killed run wrote after the checkpoint this run starts from (step 0
        without one), and a half-written last line: the resumed run writes those steps again."""
        for name in ("log.jsonl", "metrics.jsonl"):
            path = self.run_dir / name
            with self.writing(path):
                files.keep_lines(path, lambda line: _record_step(line) <= step)

    def _best_so_far(self, ckpt: dict[str, Any] | None) -> float | None:
        """The ``eval.best`` score of the run being resumed, so that a resumed run replaces
        ``best.pt`` only with a better one: best.pt's own record (it may be newer than
        last.pt's, after a final evaluation), else last.pt's."""
        metric = self.cfg.eval.best
        if ckpt is None or not metric:
            return None
        best_path = self.run_dir / "checkpoints" / "best.pt"
        record = load_checkpoint(best_path).get("best") if best_path.is_file() else ckpt.get("best")
        value = (record or {}).get(metric)
        return float(value) if value is not None else None

    def _compile(self) -> None:
        # Module.compile() keeps the module and its state_dict keys: checkpoints stay portable.
        for module in self.model.compile_targets().values():
            module.compile()

    def checkpoint_extra(self) -> dict[str, Any]:
        """What a checkpoint holds beside the model's own state."""
        extra: dict[str, Any] = {"info": vars(self.info).copy()}
        if self.best_value is not None:
            extra["best"] = {self.cfg.eval.best: self.best_value}
        if self.device.type == "cuda":
            extra["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return extra

    # ---- the loop ------------------------------------------------------------------------
    def request_stop(self, signum: int = signal.SIGINT, *_: Any) -> None:
        if self.stop_requested:  # a second Ctrl-C means now
            raise KeyboardInterrupt
        self.stop_requested = True
        self.stop_signal = int(signum)

    def fit(self) -> Path:
        """Train to ``train.steps``; returns the last checkpoint's path."""
        handlers = self._install_signal_handlers()
        self.progress.start(self.step)
        try:
            self.run_steps(self.cfg.train.steps - self.step)
            if self.running.pending():  # the last step is logged whatever train.log_every is
                self.log()
            self.save()
            if self.main:
                self.write_samples("final")
            self.evaluate(final=True)
        finally:
            self.progress.close()
            self.logger.close()
            if self.main:
                lock.release(self.run_dir)
            self._restore_signal_handlers(handlers)
            if self.stop_vote is not None:
                self.stop_vote.close()
            distributed.release()
        return self.ckpt_path

    def run_steps(self, n: int) -> None:
        """``n`` training steps with their logs, samples, evaluations and checkpoints (the body
        of :meth:`fit`, without its final save; benchmarks time exactly this)."""
        for _ in range(max(n, 0)):
            self._run_step()
            self._after_step()

    def _interrupt(self) -> None:
        self.save()
        raise TrainingInterrupted(
            f"stopped at step {self.step}, phase {self.phase}; checkpoint saved; "
            f"continue with: gankit train --resume {self.run_dir}",
            signal=getattr(self, "stop_signal", signal.SIGINT),
        )

    def _run_step(self) -> None:
        if self.stop_vote is not None and self.stop_vote.poll(self.stop_requested):
            self._interrupt()  # every rank at the same step boundary
        self._set_learning_rates()
        schedule = self.model.schedule()
        while self.phase < len(schedule):
            if self.stop_requested and self.stop_vote is None and (
                    self.phase == 0 or not self.model.step_is_atomic):
                self._interrupt()
            phase = schedule[self.phase]
            batch = self._batch() if phase.needs_batch else None
            values = self.model.train_phase(phase.name, batch, self.step)
            self.running.add(values)
            self.phase += 1
            for callback in self.phase_callbacks:
                callback(self)
        self.phase = 0
        self.step += 1
        if self.cfg.train.ema > 0:
            self.model.update_ema(self.step)

    def check_finite(self) -> None:
        """TrainingDiverged if a loss went non-finite since the last log tick (every rank
        takes the same branch: the log holds a collective)."""
        if distributed.all_agree(not bool(self.running.values_finite())):
            self.log()  # raises TrainingDiverged with the details

    def _set_learning_rates(self) -> None:
        """Scale every optimizer's configured rates by the decay factor of this step; a
        function of the step alone, so a resumed run follows the same schedule."""
        factor = lr_factor(self.step, self.cfg.train.steps, self.cfg.optim.decay_start)
        for name, opt in self.model.optimizers.items():
            for group, base in zip(opt.param_groups, self.base_lrs[name]):
                group["lr"] = base * factor

    def _batch(self) -> dict[str, torch.Tensor]:
        try:
            batch = self.source.next_batch()
        except DataError as e:  # a bad file met mid-run (data.on_bad=error)
            raise DataError(f"{e}; {self._kept_checkpoint()}") from None
        if self.cfg.train.channels_last:
            batch = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                     for k, v in batch.items()}
        return batch

    def _after_step(self) -> None:
        t, s = self.cfg.train, self.step
        self.progress.advance(s)
        if s % t.log_every == 0:
            self.log()
        elif any(every and s % every == 0 for every in (t.sample_every, self.cfg.eval.every, t.ckpt_every)):
            self.check_finite()  # no grid, score or checkpoint of a diverged model
        if self.main and t.sample_every and s % t.sample_every == 0:
            self.write_samples(f"step_{s:07d}")
        # the last step's evaluation is the final one (fit runs it once, after the last save)
        if self.cfg.eval.every and s % self.cfg.eval.every == 0 and s < t.steps:
            self.evaluate()
        if t.ckpt_every and s % t.ckpt_every == 0:
            self.save()

    def log(self) -> None:
        values = self.running.read()
        bad = non_finite(values)
        if bad:
            where = (f"the last good checkpoint is {self.ckpt_path} (step {self.saved_step})"
                     if self.saved_step is not None else "no checkpoint had been written yet")
            self.record({"step": self.step, "event": "diverged", "keys": bad})  # for gankit runs
            raise TrainingDiverged(
                f"{', '.join(bad)} became non-finite by step {self.step}; training stopped and "
                f"{where}; lower optim.lr_d / optim.lr_g or add a penalty (loss.penalty=gp)"
            )
        record = {"step": self.step, **values, "steps_per_s": self.progress.rate(self.step),
                  "time": time.time()}  # time: for reports' run time (JSONL only, not TensorBoard)
        if hasattr(self.source, "log_values"):  # e.g. data/skipped under data.on_bad=skip
            record.update(self.source.log_values())
        self.record(record)
        self.progress.update(self.step, values)

    # ---- side effects --------------------------------------------------------------------
    def save(self) -> None:
        """Checkpoint, unless a loss went non-finite since the last log (then fail loudly)."""
        self.check_finite()
        if self.main:
            save_checkpoint(make_checkpoint(self.model, self.source, self.step, self.phase,
                                            self.checkpoint_extra()),
                            self.ckpt_path, self.run_dir, self.saved_step)
        self.saved_step = self.step
        distributed.barrier()

    def writing(self, path: Path):
        """The context every write of the trainer runs in: a full disk or an unwritable
        folder stops the run with one line that names the file and what survived."""
        return files.translated(path, f"free space or fix the folder; {self._kept_checkpoint()}")

    def record(self, record: dict[str, Any], file: str = "log.jsonl") -> None:
        """Append one JSONL record (whole or not at all) to ``file`` of the run folder."""
        with self.writing(self.run_dir / file):
            self.logger.write(record, file)

    def _kept_checkpoint(self) -> str:
        if self.saved_step is None:
            return "no checkpoint had been written yet"
        return (f"the checkpoint of step {self.saved_step} is kept; continue with: "
                f"gankit train --resume {self.run_dir}")

    def write_samples(self, name: str) -> None:
        from gankit.viz import grid_layout, sample_suffix, save_samples

        samples = self.model.decode(self.fixed, use_ema=self.cfg.train.ema > 0).float().cpu()
        path = self.run_dir / "samples" / f"{name}{sample_suffix(self.info)}"
        with self.writing(path), files.replacing(path, suffix=True) as tmp:
            save_samples(samples, self.info, tmp, **grid_layout(self.model))
        if path.suffix == ".png":
            self.logger.image("samples", path, self.step)

    def evaluate(self, final: bool = False) -> dict[str, float]:
        """Metrics named in ``eval.metrics`` on the EMA generator, appended to metrics.jsonl.

        Under torchrun every rank generates its share of the samples; rank 0 gathers them,
        computes the metrics and returns them (the other ranks return ``{}``)."""
        from gankit.training.evaluation import evaluate_during_training

        if not self.cfg.eval.metrics:
            return {}
        try:
            results = evaluate_during_training(self)
        except files.WriteError as e:  # a picture of the evaluation: say what survived
            raise files.WriteError(f"{e}; {self._kept_checkpoint()}") from None
        if results and self.main:
            self.record({"step": self.step, **{f"metrics/{k}": v for k, v in results.items()},
                         "final": final, "protocol": results.protocols()}, file="metrics.jsonl")
        return results

    # ---- signals -------------------------------------------------------------------------
    def _install_signal_handlers(self) -> dict[int, Any]:
        old = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, self.request_stop)
        except ValueError:  # not the main thread: stops come through request_stop only
            pass
        return old

    @staticmethod
    def _restore_signal_handlers(old: dict[int, Any]) -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)
