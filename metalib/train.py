"""The runner every chapter trains with: fit / evaluate / predict on top of accelerate.

One loop serves a laptop CPU, one GPU (bf16 autocast) and ``torchrun`` with several processes.
It does what a chapter would otherwise copy: AdamW with a warm-up schedule, gradient
accumulation and clipping, periodic evaluation, early stopping on a validation metric with the
best weights restored, a tqdm bar, a :class:`History` table that plots in one call, and
checkpoints (safetensors + JSON, written atomically) from which an interrupted run resumes to
the same weights and metrics as an uninterrupted one.

Example:
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    >>> model = torch.nn.Linear(4, 2)
    >>> loader = make_loader(TensorDataset(x, y), batch_size=16, shuffle=True, seed=0)
    >>> history = Trainer(model, TrainConfig(epochs=2, lr=1e-2, progress=False)).fit(loader, loader)
    >>> sorted(history.evals.columns)
    ['epoch', 'step', 'val_accuracy', 'val_loss']
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from accelerate.data_loader import DataLoaderShard
from accelerate.utils import send_to_device
from torch.utils.data import DataLoader, Dataset, Sampler

from metalib import runtime
from metalib.checkpoint import has_checkpoint, load_checkpoint, read_state, save_checkpoint, set_rng_state

Batch = Any
"""A batch as a loader yields it: a dict of tensors (Hugging Face style) or ``(*inputs, labels)``."""


class StepOutput(NamedTuple):
    """What a forward function returns for one batch.

    Shapes: ``loss`` scalar (``None`` for unlabelled batches, in :meth:`Trainer.predict`);
    ``logits`` ``(B, C)`` or any ``(B, ...)`` per-example output; ``labels`` ``(B,)`` or ``None``.
    """

    loss: torch.Tensor | None
    logits: torch.Tensor
    labels: torch.Tensor | None


def default_forward(model: torch.nn.Module, batch: Batch) -> StepOutput:
    """Forward one batch: dict batches go to ``model(**batch)`` (its ``.loss``/``.logits``),
    tuple batches ``(*inputs, labels)`` to ``model(*inputs)`` with cross-entropy
    (integer labels) or mean squared error (float labels); a 1-tuple ``(inputs,)`` has no labels."""
    if isinstance(batch, Mapping):
        out = model(**batch)
        return StepOutput(out.loss, out.logits, batch.get("labels"))
    if len(batch) == 1:
        return StepOutput(None, model(batch[0]), None)
    *inputs, labels = batch
    logits = model(*inputs)
    return StepOutput(_loss(logits, labels), logits, labels)


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for integer labels, mean squared error for float labels (mean over the batch)."""
    if labels.is_floating_point():
        return F.mse_loss(logits, labels)
    return F.cross_entropy(logits, labels)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max logit is the label. Shapes: ``(N, C)``, ``(N,)``."""
    return (logits.argmax(dim=-1) == labels).float().mean().item()


@dataclass
class TrainConfig:
    """How to train. Every field has a default a chapter can start from.

    Steps are optimizer steps (one per ``grad_accum`` batches).
    """

    epochs: int = 3
    """passes over the training loader (ignored when ``max_steps`` is set)"""
    max_steps: int | None = None
    """stop after this many optimizer steps (may cut an epoch short)"""
    lr: float = 5e-5
    """peak learning rate of AdamW"""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay, applied to matrices only (not biases or norm gains)"""
    warmup_ratio: float = 0.0
    """fraction of the steps spent warming the learning rate up from 0"""
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    """learning-rate shape after warm-up"""
    grad_accum: int = 1
    """batches whose gradients are summed before one optimizer step (larger effective batch)"""
    max_grad_norm: float | None = 1.0
    """clip the global gradient norm to this (or None for no clipping)"""
    mixed_precision: bool = True
    """bf16 autocast where the device supports it (CUDA); CPU always runs float32"""
    eval_every: int | None = None
    """evaluate every this many steps (or None for the end of every epoch)"""
    eval_at_start: bool = False
    """also evaluate before the first step, so that curves start from the untrained model (step 0)"""
    log_every: int = 10
    """record the (averaged) training loss every this many steps"""
    monitor: str = "val_loss"
    """the evaluation metric for early stopping and the best checkpoint"""
    mode: Literal["min", "max"] = "min"
    """whether a lower or a higher ``monitor`` is better"""
    patience: int | None = None
    """stop after this many evaluations without improvement (or None to never stop early)"""
    restore_best: bool = True
    """when validating, end with the weights of the best evaluation"""
    checkpoint_dir: str | Path | None = None
    """where checkpoints go (or None for no checkpoints)"""
    checkpoint_every: int | None = None
    """steps between checkpoints (or None for every evaluation)"""
    resume: bool = True
    """continue from the checkpoint in ``checkpoint_dir`` if one exists"""
    device: str | None = None
    """override :func:`metalib.runtime.get_device` (e.g. "cpu")"""
    progress: bool = True
    """show a tqdm progress bar"""

    def __post_init__(self) -> None:
        positive = {"epochs": self.epochs, "grad_accum": self.grad_accum, "log_every": self.log_every}
        positive |= {
            k: v
            for k, v in (
                ("max_steps", self.max_steps),
                ("eval_every", self.eval_every),
                ("checkpoint_every", self.checkpoint_every),
                ("patience", self.patience),
            )
            if v is not None
        }
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {value}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"TrainConfig.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"TrainConfig.mode must be 'min' or 'max', got {self.mode!r}")
        if self.scheduler not in ("linear", "cosine", "constant"):
            raise ValueError(
                f"TrainConfig.scheduler must be linear, cosine or constant, got {self.scheduler!r}"
            )


@dataclass
class History:
    """Everything a run recorded: one row per logged training step and one per evaluation.

    Rows are plain dicts (``step``, ``epoch``, then ``loss``/``lr`` or ``val_*`` metrics), so a
    history survives a JSON round trip inside checkpoints.
    """

    train_rows: list[dict[str, float]] = field(default_factory=list)
    eval_rows: list[dict[str, float]] = field(default_factory=list)

    @property
    def steps(self):  # -> pandas.DataFrame
        """Training rows as a DataFrame (``step``, ``epoch``, ``loss``, ``lr``)."""
        import pandas as pd

        return pd.DataFrame(self.train_rows)

    @property
    def evals(self):  # -> pandas.DataFrame
        """Evaluation rows as a DataFrame (``step``, ``epoch``, ``val_loss``, ``val_<metric>`` ...)."""
        import pandas as pd

        return pd.DataFrame(self.eval_rows)

    def best(self, monitor: str = "val_loss", mode: str = "min") -> dict[str, float]:
        """The evaluation row with the best ``monitor`` value."""
        if not self.eval_rows:
            raise ValueError("no evaluations were recorded; pass a validation loader to fit()")
        pick = min if mode == "min" else max
        return pick(self.eval_rows, key=lambda row: row[monitor])

    def plot(self, metrics: Sequence[str] | None = None, axes=None):
        """Loss curves (train and validation) and each validation metric against steps, one panel each.

        Args:
            metrics: validation metrics besides the loss to plot (default: all recorded).
            axes: a sequence of matplotlib axes to draw into (default: a new figure).

        Returns:
            The matplotlib figure.
        """
        import matplotlib.pyplot as plt

        if metrics is None:
            metrics = sorted({k for row in self.eval_rows for k in row} - {"step", "epoch", "val_loss"})
        if axes is None:
            _, axes = plt.subplots(
                1, 1 + len(metrics), figsize=(4.5 * (1 + len(metrics)), 3.2), squeeze=False
            )
            axes = axes[0]
        ax = axes[0]
        if self.train_rows:
            ax.plot([r["step"] for r in self.train_rows], [r["loss"] for r in self.train_rows], label="train")
        if self.eval_rows:
            ax.plot(
                [r["step"] for r in self.eval_rows],
                [r["val_loss"] for r in self.eval_rows],
                "o-",
                label="validation",
            )
        ax.set(xlabel="optimizer step", ylabel="loss", title="loss")
        ax.legend()
        for ax, name in zip(axes[1:], metrics, strict=True):
            ax.plot([r["step"] for r in self.eval_rows], [r[name] for r in self.eval_rows], "o-", color="C1")
            ax.set(xlabel="optimizer step", ylabel=name, title=name)
        fig = axes[0].figure
        fig.tight_layout()
        return fig


class ResumableSampler(Sampler[int]):
    """Shuffles with a permutation that depends only on ``(seed, epoch)``, so a resumed run sees
    the same order as an uninterrupted one. Call :meth:`set_epoch` before each epoch.

    With ``lengths`` (tokens per example) and ``batch_size``, the shuffled order is cut into groups
    of ``group_batches`` batches, each group is sorted by length (longest first) and cut into
    batches, and the batches are shuffled (the last, possibly short, batch stays last so that a
    DataLoader with this ``batch_size`` cuts the same batches). Batches then hold texts of similar
    length and dynamic padding wastes little: on 2 CPU cores, about twice the throughput for
    review snippets (22 tokens on average, up to 48). ``shuffle=False`` ignores ``lengths``.
    """

    def __init__(
        self,
        n: int,
        shuffle: bool = True,
        seed: int = 0,
        *,
        lengths: Sequence[int] | None = None,
        batch_size: int = 1,
        group_batches: int = 50,
    ) -> None:
        if lengths is not None and len(lengths) != n:
            raise ValueError(f"lengths has {len(lengths)} entries for {n} examples")
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, 0
        self.lengths, self.batch_size, self.group_batches = lengths, batch_size, group_batches

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation the next iteration yields."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=generator).tolist()
        if self.lengths is None:
            return iter(order)
        size = self.batch_size * self.group_batches
        batches = []
        for start in range(0, self.n, size):
            group = sorted(order[start : start + size], key=lambda i: -self.lengths[i])
            batches += [group[k : k + self.batch_size] for k in range(0, len(group), self.batch_size)]
        last = [batches.pop()] if len(batches[-1]) < self.batch_size else []
        shuffled = [batches[b] for b in torch.randperm(len(batches), generator=generator).tolist()]
        return iter([i for batch in shuffled + last for i in batch])

    def __len__(self) -> int:
        return self.n


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    collate_fn: Callable | None = None,
    drop_last: bool = False,
    lengths: Sequence[int] | None = None,
) -> DataLoader:
    """A DataLoader whose order is reproducible per epoch and which never draws from torch's
    global random generator (so dropout masks do not depend on how many loaders were made).

    ``lengths`` (tokens per example) groups examples of similar length into batches when
    shuffling; see :class:`ResumableSampler`.
    """
    sampler = ResumableSampler(len(dataset), shuffle, seed, lengths=lengths, batch_size=batch_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed),
    )


class Trainer:
    """Trains ``model`` with ``config``; see the module docstring.

    Args:
        model: any ``torch.nn.Module`` (Hugging Face models included).
        config: :class:`TrainConfig`.
        forward: ``(model, batch) -> StepOutput``; default :func:`default_forward`.
        metrics: name → ``fn(logits, labels) -> float`` computed on the whole evaluation set;
            default ``{"accuracy": accuracy}`` when labels are integers.
        optimizer: default AdamW (fused) on the trainable parameters (no decay on biases and norms).

    Attributes:
        device: where the model and batches live (``config.device`` or the best available; under
            ``torchrun``, the device of this process).
        history: the :class:`History` of the last :meth:`fit`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        config: TrainConfig | None = None,
        *,
        forward: Callable[[torch.nn.Module, Batch], StepOutput] = default_forward,
        metrics: Mapping[str, Callable[[torch.Tensor, torch.Tensor], float]] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        from accelerate import Accelerator

        self.config = config or TrainConfig()
        # accelerate keeps one device and precision per process; several trainers in one notebook
        # may want different ones (a CUDA teacher, a CPU latency test). So accelerate handles the
        # processes (DDP, sharded loaders, gathering) and the trainer handles device and autocast.
        device = runtime.get_device(self.config.device)
        launched = int(os.environ.get("WORLD_SIZE", "1")) > 1  # torchrun / accelerate launch
        # cpu=True only matters (and is only consistent) under a multi-process launch without GPUs.
        self.accelerator = Accelerator(cpu=launched and device.type == "cpu", device_placement=False)
        # under a launch each process gets its own device from accelerate (cuda:LOCAL_RANK or cpu)
        self.device = self.accelerator.device if self.accelerator.num_processes > 1 else device
        self.forward = forward
        self.metrics = metrics
        self.optimizer = optimizer or self._default_optimizer(model)
        model.to(self.device)
        self.model, self.optimizer = self.accelerator.prepare(model, self.optimizer)
        self.history = History()

    def _autocast(self):
        """bf16 autocast on CUDA when ``config.mixed_precision`` (see :func:`metalib.runtime.autocast`)."""
        return runtime.autocast(self.device) if self.config.mixed_precision else contextlib.nullcontext()

    @property
    def unwrapped_model(self) -> torch.nn.Module:
        """The model without accelerate's / DDP's wrappers."""
        return self.accelerator.unwrap_model(self.model)

    def _default_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters (all requires_grad=False)")
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": self.config.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        # fused: one kernel updates every tensor (transformers' Trainer's default too); with MiniLM's
        # 22.7 M weights a step takes 10 ms instead of 63 ms on 2 CPU cores (benchmarks/finetune_engines.py)
        fused = all(p.device.type in ("cpu", "cuda", "mps") for p in params)
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=self.config.lr, fused=fused or None)

    # ------------------------------------------------------------------ fit
    def fit(self, train_loader: DataLoader, val_loader: DataLoader | None = None) -> History:
        """Train; evaluate on ``val_loader`` (every epoch or ``eval_every`` steps); return the history."""
        from tqdm.auto import tqdm
        from transformers import get_scheduler

        cfg, acc = self.config, self.accelerator
        self.history = History()
        if cfg.checkpoint_dir is not None and not isinstance(train_loader.sampler, ResumableSampler):
            warnings.warn(
                "checkpoints resume exactly only with loaders from make_loader (a seeded, "
                "resumable order); this loader's order may differ after a resume",
                stacklevel=2,
            )
        if val_loader is None and (cfg.patience is not None or cfg.eval_every is not None):
            warnings.warn("no validation loader: early stopping and evaluation are off", stacklevel=2)
        if len(train_loader) == 0:
            raise ValueError(
                "the training loader yields no batches (empty dataset, or drop_last with too few rows)"
            )
        train_loader = acc.prepare(train_loader)
        val_loader = self._prepare_eval_loader(val_loader) if val_loader is not None else None
        steps_per_epoch = math.ceil(len(train_loader) / cfg.grad_accum)
        total = cfg.max_steps or steps_per_epoch * cfg.epochs
        self.scheduler = get_scheduler(
            "constant_with_warmup" if cfg.scheduler == "constant" else cfg.scheduler,
            self.optimizer,
            num_warmup_steps=int(cfg.warmup_ratio * total),
            num_training_steps=total,
        )

        state = _LoopState()
        if cfg.checkpoint_dir is not None and cfg.resume and has_checkpoint(_checkpoint_path(cfg)):
            state = self._load_checkpoint()
        bar = tqdm(
            total=total,
            initial=state.step,
            desc="train",
            disable=not (cfg.progress and acc.is_main_process),
            dynamic_ncols=True,
        )
        if cfg.eval_at_start and val_loader is not None and state.step == 0:
            self._evaluate_and_track(val_loader, state, epoch=0.0)
        while state.step < total and not state.stopped:
            skip = state.batch_in_epoch
            # set_epoch reaches ResumableSampler (the order depends on (seed, epoch) only); the
            # skipping wrapper hides it under several processes, so set it on the loader first
            train_loader.set_epoch(state.epoch)
            batches = acc.skip_first_batches(train_loader, skip) if skip else train_loader
            batches.set_epoch(state.epoch)
            iterator = iter(batches)
            if state.rng is not None:  # resumed: continue the random streams exactly where they were saved
                set_rng_state(state.rng)
                state.rng = None
            n_batches = len(train_loader)
            self.model.train()
            for i, batch in enumerate(iterator, start=skip):
                batch = send_to_device(batch, self.device)
                group_end = min((i // cfg.grad_accum + 1) * cfg.grad_accum, n_batches)
                group_size = group_end - (i // cfg.grad_accum) * cfg.grad_accum
                stepping = i + 1 == group_end
                with self._autocast():
                    out = self.forward(self.model, batch)
                if stepping:
                    acc.backward(out.loss / group_size)
                else:
                    with acc.no_sync(self.model):
                        acc.backward(out.loss / group_size)
                state.loss_sum += out.loss.detach().float().item()
                state.loss_batches += 1
                if not stepping:
                    continue
                if cfg.max_grad_norm is not None:
                    acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                state.step += 1
                state.batch_in_epoch = i + 1
                bar.update(1)
                if state.step % cfg.log_every == 0 or state.step == total:
                    mean_loss = state.loss_sum / state.loss_batches
                    state.loss_sum, state.loss_batches = 0.0, 0
                    self.history.train_rows.append(
                        {
                            "step": state.step,
                            "epoch": state.epoch + (i + 1) / n_batches,
                            "loss": mean_loss,
                            "lr": self.scheduler.get_last_lr()[0],
                        }
                    )
                    bar.set_postfix(loss=f"{mean_loss:.4f}")
                end_of_epoch = i + 1 == n_batches
                evaluating = val_loader is not None and (
                    (cfg.eval_every and state.step % cfg.eval_every == 0)
                    or (not cfg.eval_every and end_of_epoch)
                    or state.step == total
                )
                if evaluating:
                    self._evaluate_and_track(val_loader, state, epoch=state.epoch + (i + 1) / n_batches)
                if end_of_epoch:
                    state.epoch += 1
                    state.batch_in_epoch = 0
                checkpointing = cfg.checkpoint_dir is not None and (
                    (cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0)
                    or (not cfg.checkpoint_every and evaluating)
                    or state.step == total
                    or state.stopped
                )
                if checkpointing:
                    self._save_checkpoint(state)
                if state.step >= total or state.stopped:
                    break
        bar.close()
        if state.best_weights is not None and cfg.restore_best:
            self.unwrapped_model.load_state_dict(state.best_weights)
        return self.history

    def _evaluate_and_track(self, loader: DataLoader, state: _LoopState, epoch: float) -> None:
        cfg = self.config
        scores = {f"val_{k}": v for k, v in self.evaluate(loader).items()}
        self.history.eval_rows.append({"step": state.step, "epoch": epoch, **scores})
        if cfg.monitor not in scores:
            raise KeyError(
                f"TrainConfig.monitor={cfg.monitor!r} is not among the evaluation metrics {sorted(scores)}"
            )
        score = scores[cfg.monitor]
        improved = state.best_score is None or (
            score < state.best_score if cfg.mode == "min" else score > state.best_score
        )
        if improved:
            state.best_score, state.bad_evals = score, 0
            state.best_weights = {
                k: v.detach().to("cpu", copy=True) for k, v in self.unwrapped_model.state_dict().items()
            }
        else:
            state.bad_evals += 1
            state.stopped = cfg.patience is not None and state.bad_evals >= cfg.patience
        self.model.train()

    # ------------------------------------------------------------ evaluate
    @torch.no_grad()
    def evaluate(self, loader: DataLoader) -> dict[str, float]:
        """Mean loss and the metrics over the whole loader (all processes), in eval mode."""
        logits, labels, loss = self._run_eval(loader)
        scores = {"loss": loss}
        metrics = self.metrics
        if metrics is None:
            classification = labels is not None and not labels.is_floating_point()
            classification = classification and logits.ndim == 2 and labels.ndim == 1
            metrics = {"accuracy": accuracy} if classification else {}
        for name, fn in metrics.items():
            scores[name] = float(fn(logits, labels))
        return scores

    @torch.no_grad()
    def predict(self, loader: DataLoader) -> torch.Tensor:
        """Concatenated logits for every example of ``loader``, in order, on the CPU."""
        return self._run_eval(loader)[0]

    def _prepare_eval_loader(self, loader: DataLoader) -> DataLoader:
        """Shard across processes when there are several (one process: the loader as it is)."""
        return self.accelerator.prepare(loader) if self.accelerator.num_processes > 1 else loader

    def _run_eval(self, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor | None, float]:
        """Gathered outputs, labels and mean loss over ``loader``.

        With :func:`default_forward` the loss is recomputed from the gathered outputs, so it is
        exact under several processes (accelerate pads the last batches with repeats). With a
        custom forward it is the mean of batch losses weighted by batch size.
        """
        acc = self.accelerator
        if not isinstance(loader, DataLoaderShard):
            loader = self._prepare_eval_loader(loader)
        # one process: nothing to gather (and accelerate's gather_for_metrics would cut batches
        # using the remainder of the last *prepared* loader, the training one)
        gather = acc.gather_for_metrics if acc.num_processes > 1 else (lambda tensor: tensor)
        self.model.eval()
        all_logits, all_labels = [], []
        loss_sum = torch.zeros((), device=self.device)
        count = torch.zeros((), device=self.device)
        for batch in loader:
            with self._autocast():
                out = self.forward(self.model, send_to_device(batch, self.device))
            if out.loss is not None:
                n = out.logits.shape[0]
                loss_sum += out.loss.detach().float() * n
                count += n
            all_logits.append(gather(out.logits.detach().float()).cpu())
            if out.labels is not None:
                all_labels.append(gather(out.labels).cpu())
        logits = torch.cat(all_logits)
        labels = torch.cat(all_labels) if all_labels else None
        if self.forward is default_forward and labels is not None:
            return logits, labels, _loss(logits, labels).item()
        loss_sum, count = acc.reduce(loss_sum, "sum"), acc.reduce(count, "sum")
        return logits, labels, (loss_sum / count).item() if count > 0 else float("nan")

    # ---------------------------------------------------------- checkpoint
    def _save_checkpoint(self, state: _LoopState) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        if acc.is_main_process:
            json_state = {
                "loop": state.to_json(),
                "scheduler": self.scheduler.state_dict(),
                "history": asdict(self.history),
                "config": _config_json(self.config),
            }
            # best weights are independent CPU copies, so safetensors accepts them as they are
            extra = {"best": state.best_weights} if state.best_weights is not None else None
            save_checkpoint(
                _checkpoint_path(self.config), self.unwrapped_model, self.optimizer, json_state, extra
            )
        acc.wait_for_everyone()

    def _load_checkpoint(self) -> _LoopState:
        path = _checkpoint_path(self.config)
        saved_config, now = read_state(path)["config"], _config_json(self.config)
        changed = sorted(k for k in now if k not in _RESUME_FREE and saved_config.get(k) != now[k])
        if changed:  # checked before loading anything, so the model is left untouched
            raise ValueError(
                f"the checkpoint in {path} was made with a different TrainConfig ({', '.join(changed)}); "
                "use another checkpoint_dir, delete it, or pass resume=False to start over"
            )
        saved = load_checkpoint(path, self.unwrapped_model, self.optimizer, self.device)
        self.scheduler.load_state_dict(saved.state["scheduler"])
        self.history = History(**saved.state["history"])
        state = _LoopState(**saved.state["loop"])
        state.best_weights = saved.extra.get("best")
        state.rng = saved.rng
        return state


@dataclass
class _LoopState:
    """Where the loop is; enough to continue it exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float | None = None
    bad_evals: int = 0
    stopped: bool = False
    loss_sum: float = 0.0  # training loss summed over the batches since the last logged row
    loss_batches: int = 0
    best_weights: dict[str, torch.Tensor] | None = None
    rng: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        # not asdict(): it would deep-copy best_weights (a whole model) only to drop it
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("best_weights", "rng")}


_RESUME_FREE = ("progress", "device", "resume", "checkpoint_dir")
"""TrainConfig fields that may change between an interrupted run and its resumption."""


def _config_json(config: TrainConfig) -> dict[str, Any]:
    """The config as it reads back from JSON (paths as strings), so saved and live configs compare."""
    return json.loads(json.dumps(asdict(config), default=str))


def _checkpoint_path(config: TrainConfig) -> Path:
    return Path(config.checkpoint_dir) / "last"


__all__ = [
    "Batch",
    "History",
    "ResumableSampler",
    "StepOutput",
    "TrainConfig",
    "Trainer",
    "accuracy",
    "default_forward",
    "make_loader",
]
