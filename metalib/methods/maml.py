"""Functional MAML with ``torch.func``: second- and first-order, MetaSGD and ANIL in one inner loop.

Parameters live in a dict ``name -> tensor``; :func:`adapt` runs the inner SGD loop on one task with
``functional_call`` + ``torch.func.grad``, and :func:`maml_loss` ``vmap``\\ s it over a batch of tasks,
so the whole meta-batch is one batched computation instead of a Python loop over task copies. The
meta-gradient is ordinary autograd: ``maml_loss(...).backward()`` fills the model's ``.grad``.

- MAML (Finn et al. 2017): ``first_order=False``, differentiates through the inner steps.
- FOMAML: ``first_order=True``, treats the inner gradients as constants.
- MetaSGD (Li et al. 2017): ``inner_lr`` is a dict of learned per-entry learning rates.
- ANIL (Raghu et al. 2020): ``adapted`` names the parameters the inner loop updates (e.g. the head).

:class:`MAML` bundles a model, a :class:`MAMLConfig` and, for MetaSGD, the learned learning rates.
Models must not contain BatchNorm (its running statistics are state that ``vmap`` cannot batch);
use LayerNorm or no normalisation. Used by chapter 6 (MAML and few-shot learning).

References:
    Finn, Abbeel and Levine 2017, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks".
    Li, Zhou, Chen and Li 2017, "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning".
    Raghu, Raghu, Bengio and Vinyals 2020, "Rapid Learning or Feature Reuse? Towards Understanding
    the Effectiveness of MAML".

Example:
    >>> import torch.nn.functional as F
    >>> from metalib.data.sine import SineTasks
    >>> model = torch.nn.Sequential(torch.nn.Linear(1, 40), torch.nn.ReLU(), torch.nn.Linear(40, 1))
    >>> maml = MAML(model, MAMLConfig(inner_lr=0.01, steps=1))
    >>> optimizer = torch.optim.Adam(maml.parameters(), lr=1e-3)
    >>> loss = maml.meta_train_step(SineTasks(seed=0).sample_batch(25, 10, 10), F.mse_loss, optimizer)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

__all__ = [
    "MAML",
    "MAMLConfig",
    "MetaTraining",
    "TaskBatch",
    "TaskStream",
    "adapt",
    "adaptation_losses",
    "maml_loss",
    "meta_train",
]

Params = dict[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
InnerLR = float | Mapping[str, torch.Tensor]


class TaskStream(Protocol):
    """An endless source of task batches, e.g. :class:`metalib.data.sine.SineTasks`."""

    def sample_batch(self, meta_batch: int, k_shot: int, n_query: int) -> TaskBatch: ...


class TaskBatch(Protocol):
    """A batch of ``T`` tasks, e.g. :class:`metalib.data.sine.SineBatch`.

    Shapes:
        x_support: ``(T, K, ...)``, y_support: ``(T, K, ...)``; x_query, y_query: ``(T, Q, ...)``.
    """

    x_support: torch.Tensor
    y_support: torch.Tensor
    x_query: torch.Tensor
    y_query: torch.Tensor


@dataclass(frozen=True)
class MAMLConfig:
    """The inner loop of MAML and its variants."""

    inner_lr: float = 0.01
    """step size of the inner SGD (the initial value of every learned rate when ``learn_inner_lr``)"""
    steps: int = 1
    """inner SGD steps per task during meta-training (0 = plain multi-task training)"""
    first_order: bool = False
    """ignore second derivatives, as FOMAML does (cheaper, usually a little worse)"""
    learn_inner_lr: bool = False
    """learn one inner learning rate per parameter entry, as MetaSGD does"""
    adapted: tuple[str, ...] | None = None
    """names or module prefixes of the parameters the inner loop updates, e.g. ``("head",)`` for ANIL;
    None adapts every trainable parameter"""

    def __post_init__(self) -> None:
        _check_steps(self.steps, "MAMLConfig.steps")
        _check_lr(self.inner_lr, "MAMLConfig.inner_lr")
        if self.adapted is not None and (isinstance(self.adapted, str) or not self.adapted):
            raise ValueError(
                f"MAMLConfig.adapted={self.adapted!r} must be a non-empty tuple of names, "
                "e.g. ('head',), or None to adapt every parameter"
            )


def _check_steps(steps: object, name: str = "steps") -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"{name}={steps!r} must be an integer >= 0")
    return steps


def _check_lr(lr: object, name: str = "inner_lr") -> None:
    if isinstance(lr, Mapping):
        return
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise ValueError(f"{name}={lr!r} must be a number > 0 (or a dict of per-parameter rates)")


def _check_model(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            raise ValueError(
                f"model contains BatchNorm ({name or 'the model'}: {type(module).__name__}), whose running "
                "statistics vmap cannot batch; use LayerNorm or no normalisation"
            )


def _adapted_names(params: Mapping[str, torch.Tensor], adapted: Collection[str] | None) -> tuple[str, ...]:
    """Parameter names matched by ``adapted`` (exact names or module prefixes); None means all."""
    if adapted is None:
        return tuple(params)
    if isinstance(adapted, str):
        raise ValueError(f"adapted={adapted!r} must be a collection of names, e.g. ({adapted!r},)")
    names = tuple(n for n in params if any(n == a or n.startswith(a + ".") for a in adapted))
    unmatched = [a for a in adapted if not any(n == a or n.startswith(a + ".") for n in params)]
    if unmatched:
        raise ValueError(f"adapted names {unmatched} match no parameter; parameters are {list(params)}")
    return names


def _inner_loop(
    model: nn.Module,
    params: Mapping[str, torch.Tensor],
    names: tuple[str, ...],
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    steps: int,
    inner_lr: InnerLR,
    first_order: bool,
) -> Params:
    """Unchecked core of :func:`adapt`: returns all of ``params``, those in ``names`` adapted."""
    if steps == 0:
        return dict(params)
    lrs = inner_lr if isinstance(inner_lr, Mapping) else dict.fromkeys(names, inner_lr)
    if first_order:  # take the inner gradients at detached points: constants for the meta-gradient
        start = {k: v.detach() for k, v in params.items()}
        step_lrs = {k: lrs[k].detach() if isinstance(lrs[k], torch.Tensor) else lrs[k] for k in names}
    else:
        start, step_lrs = dict(params), lrs
    fixed = {k: v for k, v in start.items() if k not in names}
    fast = {k: start[k] for k in names}

    def support_loss(fast: Params) -> torch.Tensor:
        return loss_fn(functional_call(model, {**fixed, **fast}, (x,)), y)

    support_grad = grad(support_loss)
    grad_sum: dict[str, torch.Tensor | int] = dict.fromkeys(names, 0)
    for _ in range(steps):
        grads = support_grad(fast)
        fast = {k: fast[k] - step_lrs[k] * grads[k] for k in names}
        if first_order:
            grad_sum = {k: grad_sum[k] + grads[k] for k in names}
    if first_order:  # theta - lr * (sum of inner gradients), differentiable in theta and in lr
        fast = {k: params[k] - lrs[k] * grad_sum[k] for k in names}
    return {**params, **fast}


def _prepare(
    model: nn.Module,
    params: Mapping[str, torch.Tensor],
    steps: int,
    inner_lr: InnerLR,
    adapted: Collection[str] | None,
) -> tuple[str, ...]:
    """Validate the arguments shared by the public functions; return the adapted names."""
    _check_model(model)
    _check_steps(steps)
    _check_lr(inner_lr)
    if adapted is None and isinstance(inner_lr, Mapping):
        adapted = tuple(inner_lr)
    names = _adapted_names(params, adapted)
    if isinstance(inner_lr, Mapping) and (missing := [n for n in names if n not in inner_lr]):
        raise ValueError(f"inner_lr has no learning rate for adapted parameters {missing}")
    return names


def _check_batch(batch: TaskBatch) -> None:
    parts = {k: getattr(batch, k, None) for k in ("x_support", "y_support", "x_query", "y_query")}
    if not all(isinstance(v, torch.Tensor) and v.dim() >= 1 for v in parts.values()):
        raise ValueError("batch needs tensors x_support, y_support, x_query, y_query of shape (T, ...)")
    sizes = {k: v.shape[0] for k, v in parts.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"batch tensors disagree on the number of tasks T: {sizes}")


def adapt(
    model: nn.Module,
    params: Mapping[str, torch.Tensor],
    x_support: torch.Tensor,
    y_support: torch.Tensor,
    loss_fn: LossFn,
    *,
    steps: int,
    inner_lr: InnerLR,
    first_order: bool = False,
    adapted: Collection[str] | None = None,
) -> Params:
    """Adapt ``params`` to one task with ``steps`` SGD steps on its support set.

    Args:
        model: the network; only its structure is used (``functional_call``), with ``params``.
        params: ``name -> tensor``, e.g. ``dict(model.named_parameters())``.
        x_support, y_support: the task's support set.
        loss_fn: ``(prediction, target) -> scalar``, e.g. ``F.mse_loss``.
        steps: inner SGD steps (>= 0).
        inner_lr: step size (> 0), or MetaSGD's ``name -> tensor`` of per-entry rates.
        first_order: treat inner gradients as constants (FOMAML).
        adapted: names or module prefixes to update (ANIL); default all of ``params`` (or the
            keys of ``inner_lr`` when it is a dict).

    Shapes:
        x_support: ``(K, ...)`` as ``model`` takes it; y_support: as ``loss_fn`` takes it.

    Returns:
        A new dict with every entry of ``params``, the adapted ones replaced; differentiable
        with respect to ``params`` (and ``inner_lr``) for a meta-gradient.
    """
    names = _prepare(model, params, steps, inner_lr, adapted)
    return _inner_loop(model, params, names, x_support, y_support, loss_fn, steps, inner_lr, first_order)


def maml_loss(
    model: nn.Module,
    params: Mapping[str, torch.Tensor],
    batch: TaskBatch,
    loss_fn: LossFn,
    *,
    steps: int,
    inner_lr: InnerLR,
    first_order: bool = False,
    adapted: Collection[str] | None = None,
) -> torch.Tensor:
    """The MAML objective: query loss after adapting on the support set, averaged over tasks.

    Each task is adapted with :func:`adapt` (same arguments); ``vmap`` runs all ``T`` tasks as one
    batched computation. Call ``.backward()`` on the result for the meta-gradient.

    Shapes:
        batch.x_support, batch.y_support: ``(T, K, ...)``; batch.x_query, batch.y_query: ``(T, Q, ...)``;
        returns a scalar.
    """
    names = _prepare(model, params, steps, inner_lr, adapted)
    _check_batch(batch)

    def query_loss(x_support, y_support, x_query, y_query) -> torch.Tensor:
        fast = _inner_loop(model, params, names, x_support, y_support, loss_fn, steps, inner_lr, first_order)
        return loss_fn(functional_call(model, fast, (x_query,)), y_query)

    losses = vmap(query_loss, randomness="different")(  # (T,)
        batch.x_support, batch.y_support, batch.x_query, batch.y_query
    )
    return losses.mean()


def adaptation_losses(
    model: nn.Module,
    params: Mapping[str, torch.Tensor],
    batch: TaskBatch,
    loss_fn: LossFn,
    *,
    steps: Sequence[int] = (0, 1, 5, 10),
    inner_lr: InnerLR,
    adapted: Collection[str] | None = None,
) -> dict[int, torch.Tensor]:
    """Test-time evaluation: each task's query loss after 0, 1, 5, 10 ... steps on its support set.

    Runs without building a graph for a meta-gradient. With ``loss_fn=F.mse_loss`` on
    :func:`metalib.data.sine.sine_evaluation_set` this is the MSE that Finn et al. 2017 plot
    against steps (their Figure 3).

    Shapes:
        batch as in :func:`maml_loss`; returns ``{n_steps: losses (T,)}`` (use ``.mean()``).
    """
    if isinstance(steps, int) or not steps:
        raise ValueError(f"steps={steps!r} must be a non-empty sequence of step counts, e.g. (1, 5, 10)")
    for s in steps:
        _check_steps(s)
    names = _prepare(model, params, 0, inner_lr, adapted)
    _check_batch(batch)
    params = {k: v.detach() for k, v in params.items()}
    if isinstance(inner_lr, Mapping):
        inner_lr = {k: v.detach() for k, v in inner_lr.items()}
    counts = sorted(set(steps))

    def query_losses(x_support, y_support, x_query, y_query) -> torch.Tensor:
        fast, done, out = params, 0, []
        for n in counts:  # adapt incrementally: n - done more steps
            fast = _inner_loop(model, fast, names, x_support, y_support, loss_fn, n - done, inner_lr, False)
            done = n
            out.append(loss_fn(functional_call(model, fast, (x_query,)), y_query))
        return torch.stack(out)  # (len(counts),)

    with torch.no_grad():
        losses = vmap(query_losses, randomness="different")(  # (T, len(counts))
            batch.x_support, batch.y_support, batch.x_query, batch.y_query
        )
    return {n: losses[:, i] for i, n in enumerate(counts)}


class MAML(nn.Module):
    """A model meta-trained with MAML, FOMAML, MetaSGD or ANIL, as chosen by ``config``.

    ``maml.parameters()`` holds the model's parameters and, with ``config.learn_inner_lr``, the
    learned inner learning rates (one tensor per adapted parameter): give them all to the optimizer.

    Args:
        model: any ``nn.Module`` without BatchNorm.
        config: :class:`MAMLConfig`; default MAML with one step of size 0.01.
    """

    def __init__(self, model: nn.Module, config: MAMLConfig | None = None) -> None:
        super().__init__()
        _check_model(model)
        self.model = model
        self.config = config if config is not None else MAMLConfig()
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        #: names of the parameters the inner loop updates
        self.adapted_names = _adapted_names(trainable, self.config.adapted)
        self.inner_lrs: nn.ParameterList | None = None
        if self.config.learn_inner_lr:
            self.inner_lrs = nn.ParameterList(
                nn.Parameter(torch.full_like(trainable[n], self.config.inner_lr)) for n in self.adapted_names
            )

    def forward(self, *args, **kwargs):
        """The wrapped model with its current (meta-learned) parameters."""
        return self.model(*args, **kwargs)

    def params(self) -> Params:
        """The model's parameters as ``name -> tensor`` (the meta-learned initialisation)."""
        return dict(self.model.named_parameters())

    def inner_lr(self) -> InnerLR:
        """The configured step size, or MetaSGD's learned rates as ``name -> tensor``."""
        if self.inner_lrs is None:
            return self.config.inner_lr
        return dict(zip(self.adapted_names, self.inner_lrs, strict=True))

    def loss(self, batch: TaskBatch, loss_fn: LossFn) -> torch.Tensor:
        """:func:`maml_loss` of this model on ``batch`` (scalar, differentiable)."""
        c = self.config
        return maml_loss(
            self.model, self.params(), batch, loss_fn, steps=c.steps, inner_lr=self.inner_lr(),
            first_order=c.first_order, adapted=self.adapted_names,
        )  # fmt: skip

    def meta_train_step(self, batch: TaskBatch, loss_fn: LossFn, optimizer: torch.optim.Optimizer) -> float:
        """One meta-update: zero the gradients, backpropagate :meth:`loss`, step; returns the loss."""
        optimizer.zero_grad(set_to_none=True)
        loss = self.loss(batch, loss_fn)
        loss.backward()
        optimizer.step()
        return loss.item()

    def adapt(
        self,
        x_support: torch.Tensor,
        y_support: torch.Tensor,
        loss_fn: LossFn,
        steps: int | None = None,
        inner_lr: InnerLR | None = None,
    ) -> Params:
        """:func:`adapt` to one task (``steps`` default ``config.steps``, ``inner_lr`` default
        :meth:`inner_lr`); run the result with ``torch.func.functional_call(maml.model, params, (x,))``."""
        c = self.config
        steps = c.steps if steps is None else steps
        return adapt(
            self.model, self.params(), x_support, y_support, loss_fn, steps=steps,
            inner_lr=self.inner_lr() if inner_lr is None else inner_lr, first_order=c.first_order,
            adapted=self.adapted_names,
        )  # fmt: skip

    def adaptation_losses(
        self,
        batch: TaskBatch,
        loss_fn: LossFn,
        steps: Sequence[int] = (0, 1, 5, 10),
        inner_lr: InnerLR | None = None,
    ) -> dict[int, torch.Tensor]:
        """:func:`adaptation_losses` with this model's adapted parameters and inner learning
        rate(s) (or ``inner_lr``, e.g. a step size tuned for a baseline)."""
        return adaptation_losses(
            self.model, self.params(), batch, loss_fn, steps=steps,
            inner_lr=self.inner_lr() if inner_lr is None else inner_lr, adapted=self.adapted_names,
        )  # fmt: skip


@dataclass(frozen=True)
class MetaTraining:
    """What :func:`meta_train` did: the meta-loss of every iteration and the wall seconds it took."""

    losses: list[float]
    seconds: float


def meta_train(
    maml: MAML,
    tasks: TaskStream,
    loss_fn: LossFn,
    iterations: int,
    *,
    meta_batch: int = 25,
    k_shot: int = 10,
    n_query: int = 10,
    lr: float = 1e-3,
    progress: bool = False,
) -> MetaTraining:
    """Meta-train ``maml`` in place: ``iterations`` meta-updates on fresh batches from ``tasks``.

    Adam over ``maml.parameters()`` (MetaSGD's learning rates included) at ``lr``, cosine-decayed
    to zero over the run; each iteration is one :meth:`MAML.meta_train_step` on ``meta_batch``
    tasks of ``k_shot`` support and ``n_query`` query points. Costs ``iterations`` meta-gradients.

    Raises:
        ValueError: ``iterations`` < 1 or ``lr`` not positive.
    """
    from tqdm.auto import tqdm

    iterations = _check_steps(iterations, "iterations")
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    _check_lr(lr, "lr")
    optimizer = torch.optim.Adam(maml.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, iterations)
    losses = []
    t0 = time.perf_counter()
    for _ in tqdm(range(iterations), desc="meta-train", disable=not progress):
        losses.append(
            maml.meta_train_step(tasks.sample_batch(meta_batch, k_shot, n_query), loss_fn, optimizer)
        )
        schedule.step()
    return MetaTraining(losses, time.perf_counter() - t0)
