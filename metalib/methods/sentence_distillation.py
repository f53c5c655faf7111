"""Task-agnostic distillation: teach a small encoder a large one's *sentence vectors* on unlabelled text.

Chapter 2 finds that chapter 1's masked-language-model pretraining, at the scale a CPU affords,
gives the tiny BERT nothing to transfer to sentiment: its frozen features probe no better than
random ones. The small encoders used in practice are not pretrained that way alone. DistilBERT,
TinyBERT and MiniLM itself learn from a large pretrained *teacher* over unlabelled text, before any
task ("general" or task-agnostic distillation). This module does the simplest version of that:

    L = mean over texts of 1 - cos(W · pool(student(x)), teacher(x)),

with ``pool`` the mean over real tokens, ``W`` a linear map from the student's width H to the
teacher's D (discarded afterwards), and ``teacher(x)`` the teacher's sentence vector, computed once
(:func:`metalib.embeddings.cached_embeddings`). No label is used.

:func:`vector_forward` and :func:`distill_sentence_vectors` are the objective and its training loop
(:class:`metalib.train.Trainer`); :mod:`metalib.recipes.distilled` builds chapter 1's tiny BERT
distilled this way from MiniLM on the Rotten Tomatoes *training* snippets
(``recipes.load_encoder("tiny-bert-distilled")``).

Example:
    >>> import torch
    >>> student = torch.randn(4, 8)
    >>> abs(vector_loss(student, 3 * student).item()) < 1e-6  # scale does not matter, direction does
    True
    >>> round(vector_loss(student, -student).item(), 4)
    2.0

References:
    Sanh et al. 2019, "DistilBERT, a distilled version of BERT".
    Jiao et al. 2020, "TinyBERT: distilling BERT for natural language understanding".
    Reimers and Gurevych 2020, "Making monolingual sentence embeddings multilingual using knowledge
    distillation" (students trained on a teacher's sentence vectors, there with a squared error).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from metalib.train import StepOutput, TrainConfig, Trainer, make_loader

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


__all__ = [
    "distill_sentence_vectors",
    "vector_forward",
    "vector_loss",
]


def vector_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean cosine distance ``1 - cos`` between rows. Shapes: (B, D) and (B, D) → scalar in [0, 2]."""
    return (1 - F.cosine_similarity(student.float(), teacher.float(), dim=-1)).mean()


def vector_forward(model: torch.nn.Module, batch: Mapping[str, Any]) -> StepOutput:
    """A :class:`metalib.train.Trainer` forward function: ``model(**inputs).logits`` (B, D) against the
    batch's teacher vectors (``teacher_logits`` (B, D), as :class:`~metalib.methods.distillation.SoftTargets`
    stores them), loss :func:`vector_loss`."""
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "teacher_logits")}
    predicted = model(**inputs).logits  # (B, D)
    return StepOutput(vector_loss(predicted, batch["teacher_logits"]), predicted, None)


def distill_sentence_vectors(
    encoder: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    teacher_vectors: torch.Tensor,
    train_config: TrainConfig,
    *,
    batch_size: int = 128,
    max_length: int = 64,
    seed: int = 0,
) -> Trainer:
    """Train ``encoder`` (in place) so that a linear map of its mean-pooled output matches
    ``teacher_vectors`` (N, D), one per text, in direction.

    The student is :class:`~metalib.methods.transfer.MeanPoolClassifier` with a D-wide "head" (the
    linear map) and no normalisation; the map is thrown away afterwards and the encoder kept.
    Batches group texts of similar length. Returns the trainer (``trainer.history``: the loss).
    """
    from metalib.methods.distillation import SoftTargets
    from metalib.methods.transfer import MeanPoolClassifier, TokenizedTexts, pad_collator

    if len(texts) != len(teacher_vectors):
        raise ValueError(f"{len(texts)} texts but {len(teacher_vectors)} teacher vectors")
    student = MeanPoolClassifier(encoder, num_labels=teacher_vectors.shape[1], normalize=False)
    rows = SoftTargets(TokenizedTexts(tokenizer, texts, None, max_length=max_length), teacher_vectors)
    loader = make_loader(
        rows,
        batch_size,
        shuffle=True,
        seed=seed,
        collate_fn=pad_collator(tokenizer),
        lengths=rows.lengths().tolist(),
    )
    trainer = Trainer(student, train_config, forward=vector_forward)
    trainer.fit(loader)
    return trainer
