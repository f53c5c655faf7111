"""Knowledge distillation: train a small *student* to match a large *teacher*'s soft predictions.

The teacher's class probabilities, softened by a temperature ``T``, carry more information per
example than a hard label (how *close* the other classes were), and they can be computed for
unlabelled text. Hinton et al. (2015) train the student on

    L = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, y),

with ``z_t``, ``z_s`` the teacher's and student's logits. The ``T^2`` keeps the gradient of the
soft term the same size as ``T`` changes (its gradient scales as ``1 / T^2``).

The pieces, each usable alone with :class:`metalib.train.Trainer`:

- :class:`DistillationConfig` and :func:`kd_loss`: the objective above;
- :func:`layer_copy_student`: a BERT student with a subset of the teacher's layers (DistilBERT's
  initialisation: every other layer), or the same architecture randomly initialised;
- :class:`SoftTargets` and :func:`kd_forward`: teacher logits computed once and stored per
  training row, so the teacher does not run again every epoch;
- :func:`distill`: fine-tune a student on soft (and optionally hard) targets;
- :func:`soft_label_probe`: the cheapest student, logistic regression on frozen features fitted
  to soft targets.

Used by chapter 5 (distillation).

Example:
    >>> import torch
    >>> student, teacher = torch.randn(4, 2), torch.randn(4, 2)
    >>> loss = kd_loss(student, teacher, torch.tensor([0, 1, 1, 0]), temperature=2.0, alpha=0.5)
    >>> loss.shape
    torch.Size([])

References:
    Hinton, Vinyals and Dean 2015, "Distilling the knowledge in a neural network".
    Sanh et al. 2019, "DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter".
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from metalib.train import StepOutput, TrainConfig, Trainer, make_loader

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "DistillationConfig",
    "SoftTargets",
    "distill",
    "kd_forward",
    "kd_loss",
    "layer_copy_student",
    "soft_label_probe",
]


@dataclass(frozen=True)
class DistillationConfig:
    """How the student weighs the teacher against the labels."""

    temperature: float = 2.0
    """the temperature (> 0) that softens both distributions; 1 is the plain softmax"""
    alpha: float = 0.5
    """weight of the soft-target (teacher) term in [0, 1]; 1 - alpha weighs the hard labels"""

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"DistillationConfig.temperature must be > 0, got {self.temperature}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"DistillationConfig.alpha must be in [0, 1], got {self.alpha}")


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    """The distillation loss of Hinton et al. (2015), averaged over the batch.

    ``alpha * T^2 * KL(p_t || p_s) + (1 - alpha) * CE(student_logits, labels)``, with
    ``p_t = softmax(teacher_logits / T)`` and ``p_s = softmax(student_logits / T)``; KL in nats per
    example. ``alpha`` weighs the teacher: ``alpha = 1`` (or ``labels=None``) is pure soft-target
    training, ``alpha = 0`` plain cross-entropy on the labels. The teacher gets no gradient.

    Shapes: ``student_logits``, ``teacher_logits`` (B, C); ``labels`` (B,) int or None → scalar.

    Args:
        temperature: T > 0.
        alpha: weight of the soft term in [0, 1]; ignored (taken as 1) when ``labels`` is None.
    """
    DistillationConfig(temperature, alpha)  # validates
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} differ in shape"
        )
    if labels is None:
        alpha = 1.0
    student = student_logits.float()
    soft = torch.zeros((), device=student.device)
    if alpha > 0:
        log_p_s = F.log_softmax(student / temperature, dim=-1)  # (B, C)
        log_p_t = F.log_softmax(teacher_logits.detach().float() / temperature, dim=-1)  # (B, C)
        soft = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * temperature**2
    hard = F.cross_entropy(student, labels) if alpha < 1 else torch.zeros((), device=student.device)
    return alpha * soft + (1 - alpha) * hard


_LAYER = re.compile(r"(^|\.)encoder\.layer\.(\d+)\.")


def layer_copy_student(
    teacher: PreTrainedModel, layers: Sequence[int] | None = None, *, random_init: bool = False
) -> PreTrainedModel:
    """A BERT-style student with ``len(layers)`` transformer layers, initialised from the teacher.

    The student has the teacher's class (e.g. ``BertForSequenceClassification`` or ``BertModel``)
    and config, except ``num_hidden_layers``. Student layer ``i`` is a copy of teacher layer
    ``layers[i]``; embeddings, pooler and classification head are copied as they are. This is
    DistilBERT's initialisation (Sanh et al. 2019): same width, every other layer.

    Args:
        teacher: a transformers model whose layers are ``encoder.layer.<i>`` (BERT, MiniLM, RoBERTa...).
        layers: teacher layers to keep, in order; default every other one, ``0, 2, 4, ...``
            (half the layers, rounded up).
        random_init: same architecture, weights freshly initialised by transformers (seed first with
            :func:`metalib.runtime.seed_everything`), nothing copied: the baseline that shows what
            the copied weights are worth.

    Returns:
        The student, on the teacher's device, in train mode.
    """
    total = teacher.config.num_hidden_layers
    layers = list(range(0, total, 2)) if layers is None else [int(i) for i in layers]
    if not layers or any(not 0 <= i < total for i in layers):
        raise ValueError(f"layers must be a non-empty list of teacher layers in 0..{total - 1}, got {layers}")
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    if not random_init:
        source = teacher.state_dict()
        state = {}
        for key in student.state_dict():
            match = _LAYER.search(key)
            if match is None:
                state[key] = source[key]
            else:  # student layer i <- teacher layer layers[i]
                i = int(match.group(2))
                state[key] = source[key[: match.start(2)] + str(layers[i]) + key[match.end(2) :]]
        student.load_state_dict(state)
    device = next(teacher.parameters()).device
    return student.to(device).train()


class SoftTargets(Dataset):
    """A dataset of dict rows (e.g. :class:`metalib.methods.transfer.TokenizedTexts`) with each row's
    teacher logits added as ``teacher_logits`` (a list of C floats), for :func:`kd_forward`.

    The teacher runs once over the training texts (:func:`metalib.methods.transfer.predict_logits`);
    every epoch of the student then reads the stored logits. Rows without a label (a transfer set of
    unlabelled text) are fine: the loss then uses the soft targets only.

    Shapes: ``teacher_logits`` (N, C), one row per dataset row.
    """

    def __init__(self, rows: Dataset, teacher_logits: torch.Tensor) -> None:
        if len(rows) != len(teacher_logits):
            raise ValueError(f"{len(rows)} rows but {len(teacher_logits)} rows of teacher logits")
        self.rows = rows
        self.teacher_logits = teacher_logits.detach().float().cpu()

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.rows[index], "teacher_logits": self.teacher_logits[index].tolist()}

    def lengths(self):
        """Tokens per row, for length-grouped batches (delegates to the wrapped dataset)."""
        return self.rows.lengths()


def kd_forward(config: DistillationConfig) -> Callable[[torch.nn.Module, Mapping[str, Any]], StepOutput]:
    """A :class:`metalib.train.Trainer` forward function for dict batches with ``teacher_logits``.

    Training batches (with ``teacher_logits`` (B, C), ``labels`` (B,) optional) get :func:`kd_loss`;
    batches without teacher logits (validation, test) get plain cross-entropy on their labels, so
    early stopping and accuracy work as for any classifier.

    Tuple batches ``(inputs, teacher_logits, labels)`` (e.g. from a ``TensorDataset`` of frozen
    features) go to ``model(inputs)``, which returns the logits (B, C) itself; with ``alpha = 1`` the
    labels are not used (pass any placeholder).
    """

    def forward(model: torch.nn.Module, batch: Any) -> StepOutput:
        if not isinstance(batch, Mapping):
            inputs, teacher, labels = batch  # (B, ...), (B, C), (B,)
            logits = model(inputs)  # (B, C)
            return StepOutput(
                kd_loss(logits, teacher, labels, config.temperature, config.alpha), logits, labels
            )
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "teacher_logits")}
        logits = model(**inputs).logits  # (B, C)
        labels = batch.get("labels")
        teacher = batch.get("teacher_logits")
        if teacher is not None:
            loss = kd_loss(logits, teacher, labels, config.temperature, config.alpha)
        elif labels is not None:
            loss = F.cross_entropy(logits.float(), labels)
        else:
            loss = None
        return StepOutput(loss, logits, labels)

    return forward


def distill(
    student: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    teacher_logits: torch.Tensor,
    train_config: TrainConfig,
    config: DistillationConfig | None = None,
    *,
    labels: Sequence[int] | None = None,
    val: tuple[Sequence[str], Sequence[int]] | None = None,
    batch_size: int = 32,
    max_length: int = 64,
    seed: int = 0,
    group_by_length: bool = True,
) -> Trainer:
    """Train ``student`` on the teacher's logits for ``texts`` (and ``labels``, if given).

    The student tokenises the texts with its own ``tokenizer`` (it may differ from the teacher's:
    the logits belong to the text, not to its tokens). With ``config.alpha = 0`` and labels this is
    ordinary fine-tuning on hard labels, through the same code path. Returns the trainer
    (``trainer.history``, ``trainer.unwrapped_model``).

    Shapes: ``teacher_logits`` (N, C) for the N ``texts``.
    """
    from metalib.methods.transfer import TokenizedTexts, pad_collator

    config = config or DistillationConfig()
    rows = SoftTargets(TokenizedTexts(tokenizer, texts, labels, max_length=max_length), teacher_logits)
    collate = pad_collator(tokenizer)
    lengths = rows.lengths().tolist() if group_by_length else None
    loader = make_loader(rows, batch_size, shuffle=True, seed=seed, collate_fn=collate, lengths=lengths)
    val_loader = None
    if val is not None:
        val_loader = make_loader(
            TokenizedTexts(tokenizer, *val, max_length=max_length), 128, collate_fn=collate
        )
    trainer = Trainer(student, train_config, forward=kd_forward(config))
    trainer.fit(loader, val_loader)
    return trainer


def soft_label_probe(features: Any, targets: Any, C: float = 1.0, seed: int = 0) -> Any:
    """Logistic regression fitted to soft targets: a linear student on frozen features.

    The cross-entropy against soft targets, ``-sum_c p_c log q_c`` per row, equals scikit-learn's
    weighted log-loss on every row repeated once per class ``c`` with weight ``p_c``; so this is
    ``alpha = 1, T = 1`` distillation solved exactly by L-BFGS, with no learning rate or epochs to
    choose. One-hot targets give the ordinary probe on hard labels (same ``C``: a fair comparison).

    Args:
        features: (N, H) array or tensor, e.g. :func:`metalib.embeddings.embed_texts`.
        targets: (N, C) class probabilities per row (rows sum to 1).
        C: inverse L2 strength, as in ``LogisticRegression``.
        seed: the solver's ``random_state``.

    Returns:
        A fitted ``sklearn.linear_model.LogisticRegression`` with ``classes_ == [0 .. C-1]``.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=np.float64)
    p = np.asarray(targets, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(x) or p.shape[1] < 2:
        raise ValueError(f"targets must be (N, C) with C >= 2 for {len(x)} feature rows, got {p.shape}")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-6) or (p < 0).any():
        raise ValueError("each row of targets must be class probabilities (non-negative, summing to 1)")
    n_classes = p.shape[1]
    rows = np.concatenate([x] * n_classes)  # (C * N, H)
    labels = np.repeat(np.arange(n_classes), len(x))
    probe = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    return probe.fit(rows, labels, sample_weight=p.T.reshape(-1))
