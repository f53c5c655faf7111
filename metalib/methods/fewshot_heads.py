"""The few-shot head on frozen features, learned three ways: MAML, multi-task training, the support set alone.

The survey this book follows sketches a "MetaModel" for few-shot text classification: two linear
layers on top of an encoder, trained with cross-entropy. As printed it cannot run (``num_classes``
is undefined; its input size 768 is BERT-base's, while MiniLM gives 384) and, as written, its loop is
plain supervised training: no episodes, no inner loop, so nothing in it is meta-learned.
:class:`FewShotHead` is that head with the sizes taken from the data, and this module trains it

- with MAML, FOMAML or ANIL (:func:`train_maml_head`, on :mod:`metalib.methods.maml`): an
  initialisation from which a few SGD steps on an episode's support set classify its queries;
- with the survey's multi-task "meta-loss" (:func:`multitask_loss`, :func:`train_multitask_head`):
  the average loss over M tasks, no inner loop — "pretrained on all tasks", whose hidden layer is
  then reused with a new output layer fitted per episode;

and :func:`fit_on_support` is the baseline that learns nothing across tasks: a logistic-regression
layer fitted on each episode's support set (optionally on transformed features).

References:
    Finn, Abbeel and Levine 2017, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks".
    Raghu et al. 2020, "Rapid Learning or Feature Reuse? Towards Understanding the Effectiveness of MAML".
    Chen et al. 2019, "A Closer Look at Few-shot Classification" (the fine-tuning baseline).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from metalib.fewshot import (
    Classifier,
    EpisodeBatch,
    EpisodicConfig,
    EpisodicHistory,
    check_features,
    episode_accuracies,
    fit_on_episodes,
)
from metalib.methods.maml import MAML, MAMLConfig, adapt

__all__ = [
    "FewShotHead",
    "HeadTrainingConfig",
    "adapted_classifier",
    "fit_on_support",
    "multitask_loss",
    "train_maml_head",
    "train_multitask_head",
]


class FewShotHead(nn.Module):
    """The survey's MetaModel, fixed: ``Linear(in_features, hidden) -> ReLU -> Linear(hidden, n_out)``.

    Args:
        in_features: size of the frozen features (384 for MiniLM — the survey's 768 is BERT-base's).
        n_out: output classes: ``n_way`` for MAML (episode labels ``0 .. N-1``), the number of
            meta-training classes for multi-task training.
        hidden: width of the hidden layer (the survey's 64).
        zero_head: start the output layer at zero, so an unadapted head predicts the uniform
            distribution whatever order an episode's classes come in.
        seed: seed of the initialisation.

    Shapes:
        ``(..., in_features) -> (..., n_out)``; :meth:`features` ``-> (..., hidden)``.

    The submodules are ``body`` (first layer and ReLU) and ``head`` (output layer); ANIL adapts
    ``("head",)`` only.
    """

    def __init__(
        self, in_features: int, n_out: int, hidden: int = 64, *, zero_head: bool = False, seed: int = 0
    ):
        super().__init__()
        if min(in_features, n_out, hidden) < 1:
            raise ValueError(f"in_features={in_features}, n_out={n_out}, hidden={hidden} must all be >= 1")
        with torch.random.fork_rng(devices=[]):  # a reproducible initialisation; global stream untouched
            torch.manual_seed(seed)
            self.body = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU())
            self.head = nn.Linear(hidden, n_out)
        if zero_head:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.in_features = in_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden representation ``(..., hidden)``."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"FewShotHead(in_features={self.in_features}) got inputs of size {x.shape[-1]}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., n_out)`` of features ``(..., in_features)``."""
        return self.head(self.features(x))


@dataclass(frozen=True)
class HeadTrainingConfig(EpisodicConfig):
    """Episodes and optimiser of :func:`train_maml_head` and :func:`train_multitask_head`: those of
    :class:`~metalib.fewshot.EpisodicConfig` with 8 episodes a step, and the head's shape."""

    meta_batch: int = 8
    """episodes per optimizer step"""
    hidden: int = 64
    """width of the head's hidden layer"""
    zero_head: bool = True
    """start the output layer at zero (see :class:`FewShotHead`)"""

    POSITIVE: ClassVar[tuple[str, ...]] = (*EpisodicConfig.POSITIVE, "hidden")


def adapted_classifier(maml: MAML, steps: int | None = None) -> Classifier:
    """Classify each episode's queries after ``steps`` inner SGD steps on its support set.

    Args:
        maml: a meta-trained :class:`~metalib.methods.maml.MAML` around a :class:`FewShotHead`.
        steps: inner steps at test time (default: those used in meta-training). MAML is usually
            evaluated with more steps than it trained with; MetaSGD's learned rates are tuned to
            the trained number and can diverge with more.

    Returns:
        A :data:`metalib.fewshot.Classifier`; episodes are adapted in parallel with ``vmap``.
    """
    steps = maml.config.steps if steps is None else steps
    n_out = maml.model.head.out_features if isinstance(maml.model, FewShotHead) else None

    def classify(x_support, y_support, x_query, n_way: int) -> torch.Tensor:
        if n_out is not None and n_out != n_way:
            raise ValueError(f"the head has {n_out} outputs but the episodes are {n_way}-way")
        params = {k: v.detach() for k, v in maml.params().items()}
        rates = maml.inner_lr()
        if isinstance(rates, dict):
            rates = {k: v.detach() for k, v in rates.items()}

        def one(xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor) -> torch.Tensor:
            fast = adapt(
                maml.model, params, xs, ys, F.cross_entropy, steps=steps, inner_lr=rates,
                adapted=maml.adapted_names,
            )  # fmt: skip
            return functional_call(maml.model, fast, (xq,))  # (N*Q, N)

        return vmap(one, randomness="different")(x_support, y_support, x_query)  # (E, N*Q, N)

    return classify


def train_maml_head(
    features: torch.Tensor,
    labels: Sequence[Hashable],
    classes: Sequence[Hashable],
    maml_config: MAMLConfig,
    config: HeadTrainingConfig | None = None,
    val: EpisodeBatch | None = None,
    val_steps: int | None = None,
) -> tuple[MAML, EpisodicHistory]:
    """Meta-train a :class:`FewShotHead` with MAML, FOMAML, MetaSGD or ANIL on episodes of ``classes``.

    Args:
        features, labels: frozen features ``(R, D)`` and the label of each row.
        classes: the meta-training classes.
        maml_config: the inner loop (``first_order`` for FOMAML, ``adapted=("head",)`` for ANIL).
        config: episodes and outer optimiser (:class:`HeadTrainingConfig`).
        val: fixed meta-validation episodes; the weights adapting best on them are kept.
        val_steps: inner steps when validating (default ``maml_config.steps``).

    Returns:
        The :class:`~metalib.methods.maml.MAML` wrapper (classify with :func:`adapted_classifier`)
        and the :class:`~metalib.fewshot.EpisodicHistory`.
    """
    config = config or HeadTrainingConfig()
    check_features(features, labels)
    head = FewShotHead(
        features.shape[1], config.n_way, config.hidden, zero_head=config.zero_head, seed=config.seed
    )
    maml = MAML(head.to(features.device), maml_config)

    def loss(batch: EpisodeBatch) -> torch.Tensor:
        return maml.loss(batch, F.cross_entropy)

    def validate() -> float:
        return episode_accuracies(adapted_classifier(maml, val_steps), val).mean().item()

    history = fit_on_episodes(
        maml, loss, config.sampler(labels, classes), features, config, validate if val is not None else None
    )
    return maml.eval(), history


def multitask_loss(
    model: torch.nn.Module, batch: EpisodeBatch, class_index: dict[Hashable, int]
) -> torch.Tensor:
    """The survey's meta-loss: the mean over the M tasks of each task's mean loss, no adaptation.

    .. math:: \\mathcal{L}(\\theta) = \\frac{1}{M} \\sum_{i=1}^{M} \\frac{1}{N_i} \\sum_{j=1}^{N_i}
        \\ell\\bigl(y_j, f_\\theta(x_j)\\bigr)

    Every example of task ``i`` (support and query alike) is scored by one shared model whose
    outputs are the meta-training classes; each task's cross-entropy is taken over *its* classes
    only (the logits of the others are dropped), so a task is the N-way problem it poses.

    Args:
        model: maps features to one logit per meta-training class.
        batch: M episodes; ``batch.classes`` name each episode's classes.
        class_index: meta-training class -> output index of ``model``.

    Shapes:
        model output ``(M, S, C)`` for inputs ``(M, S, D)``; returns a scalar.
    """
    x = torch.cat([batch.x_support, batch.x_query], dim=1)  # (M, S, D), S = N*K + N*Q
    y = torch.cat([batch.y_support, batch.y_query], dim=1)  # (M, S) in 0 .. N-1
    try:
        columns = torch.tensor(
            [[class_index[c] for c in task] for task in batch.classes], device=x.device
        )  # (M, N)
    except KeyError as err:
        raise ValueError(f"class {err.args[0]!r} of the batch is not in class_index") from err
    logits = model(x)  # (M, S, C)
    task_logits = logits.gather(2, columns.unsqueeze(1).expand(-1, x.shape[1], -1))  # (M, S, N)
    per_task = F.cross_entropy(task_logits.transpose(1, 2), y, reduction="none").mean(1)  # (M,)
    return per_task.mean()


def train_multitask_head(
    features: torch.Tensor,
    labels: Sequence[Hashable],
    classes: Sequence[Hashable],
    config: HeadTrainingConfig | None = None,
    val: EpisodeBatch | None = None,
    support_steps: int = 100,
) -> tuple[FewShotHead, EpisodicHistory]:
    """Train a :class:`FewShotHead` over all meta-training classes with :func:`multitask_loss`.

    Validation (and the intended use on new classes) keeps the hidden layer and fits a new output
    layer on each episode's support set: ``fit_on_support(transform=head.features)``.

    Returns:
        The head, whose outputs are ``classes`` in sorted order, and the
        :class:`~metalib.fewshot.EpisodicHistory`.
    """
    config = config or HeadTrainingConfig()
    check_features(features, labels)
    sampler = config.sampler(labels, classes)
    class_index = {c: i for i, c in enumerate(sampler.classes)}
    model = FewShotHead(features.shape[1], len(class_index), config.hidden, seed=config.seed).to(
        features.device
    )

    def validate() -> float:
        return episode_accuracies(fit_on_support(model.features, steps=support_steps), val).mean().item()

    history = fit_on_episodes(
        model,
        lambda batch: multitask_loss(model, batch, class_index),
        sampler,
        features,
        config,
        validate if val is not None else None,
    )
    return model.eval(), history


def fit_on_support(
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    steps: int = 100,
    lr: float = 0.1,
    weight_decay: float = 1e-3,
) -> Classifier:
    """The fine-tune-on-support baseline: a logistic-regression layer fitted per episode.

    Each episode gets its own zero-initialised ``(D, N)`` weights and ``(N,)`` bias, fitted by
    ``steps`` full-batch Adam steps on the cross-entropy of its support set plus
    ``weight_decay * ||W||^2``; all episodes are fitted at once as one batched problem.

    Args:
        transform: applied to the features first (e.g. a trained hidden layer); not trained here.
        steps, lr: Adam steps and learning rate of the fit.
        weight_decay: L2 penalty on the weights (fewer support examples need more of it).

    Returns:
        A :data:`metalib.fewshot.Classifier`.
    """
    if steps < 1 or not lr > 0 or weight_decay < 0:
        raise ValueError(f"need steps >= 1, lr > 0, weight_decay >= 0; got {steps}, {lr}, {weight_decay}")
    embed = transform if transform is not None else (lambda x: x)

    def classify(x_support, y_support, x_query, n_way: int) -> torch.Tensor:
        with torch.no_grad():
            zs, zq = embed(x_support), embed(x_query)  # (E, S, D'), (E, Q, D')
        with torch.enable_grad():
            weight = torch.zeros(
                zs.shape[0], zs.shape[2], n_way, device=zs.device, requires_grad=True
            )  # (E, D', N)
            bias = torch.zeros(zs.shape[0], 1, n_way, device=zs.device, requires_grad=True)  # (E, 1, N)
            optimizer = torch.optim.Adam([weight, bias], lr=lr)
            for _ in range(steps):
                logits = zs @ weight + bias  # (E, S, N)
                # sum over episodes of each episode's mean loss: the episodes' fits are independent
                loss = F.cross_entropy(logits.transpose(1, 2), y_support, reduction="none").mean(1).sum()
                loss = loss + weight_decay * weight.pow(2).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return (zq @ weight + bias).detach()  # (E, Q, N)

    return classify
