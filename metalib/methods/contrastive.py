"""Contrastive text matching: the InfoNCE objective, and zero-shot classification with it.

A contrastively trained encoder (CLIP's two towers, or all-MiniLM-L6-v2's one shared tower) is
trained so that a text's embedding is closer to its partner's than to anything else in the batch.
The objective is InfoNCE (van den Oord et al. 2018): for unit vectors ``q_i`` and keys ``k_j`` with
the positive pairs on the diagonal,

    L = -(1/N) sum_i log( exp(q_i . k_i / tau) / sum_j exp(q_i . k_j / tau) ),

a cross-entropy whose "classes" are the candidates in the batch. CLIP (Radford et al. 2021) averages
it over both directions (texts → images and images → texts) and learns the temperature ``tau``.

Zero-shot classification is the same softmax with *label descriptions* as the keys: embed
``"a positive movie review"`` and ``"a negative movie review"``, and give a text the label whose
description is most similar (:func:`zero_shot_probabilities`). With several descriptions per label,
their normalised embeddings are averaged (CLIP's prompt ensembling, :func:`label_embeddings`).

Used by chapter 3 (zero-shot prompts).

Example:
    >>> import torch
    >>> q = torch.nn.functional.normalize(torch.eye(3) + 0.1, dim=1)
    >>> round(info_nce(q, q, temperature=1.0).item(), 4)
    0.635

References:
    van den Oord et al. 2018, "Representation learning with contrastive predictive coding".
    Radford et al. 2021, "Learning transferable visual models from natural language supervision".
    Reimers and Gurevych 2019, "Sentence-BERT: sentence embeddings using Siamese BERT-networks".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["info_nce", "label_embeddings", "zero_shot_probabilities"]


def info_nce(
    queries: torch.Tensor,
    keys: torch.Tensor,
    *,
    temperature: float = 0.05,
    targets: torch.Tensor | None = None,
    symmetric: bool = False,
) -> torch.Tensor:
    """The InfoNCE loss of queries against candidate keys (mean over queries).

    Args:
        queries: ``(N, D)``; L2-normalise them for cosine similarity (the function does not).
        keys: ``(M, D)`` candidates.
        temperature: ``tau`` > 0; similarities are divided by it before the softmax.
        targets: ``(N,)`` index of each query's positive key; default ``arange(N)`` (paired
            batches, ``M == N``). Label-description matching: keys are the C descriptions and
            targets the labels.
        symmetric: also the keys → queries direction, averaged (CLIP); needs paired batches.

    Shapes:
        returns a scalar tensor.
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0")
    if queries.ndim != 2 or keys.ndim != 2 or queries.shape[1] != keys.shape[1]:
        raise ValueError(
            f"queries {tuple(queries.shape)} and keys {tuple(keys.shape)} must be (N, D) and (M, D)"
        )
    if targets is None:
        if queries.shape[0] != keys.shape[0]:
            raise ValueError("without targets, queries and keys must be paired (same number of rows)")
        targets = torch.arange(queries.shape[0], device=queries.device)
    logits = queries @ keys.T / temperature  # (N, M) similarities / tau
    loss = F.cross_entropy(logits, targets)
    if symmetric:
        if not torch.equal(targets, torch.arange(len(targets), device=targets.device)):
            raise ValueError("symmetric=True needs paired batches (targets = arange(N))")
        loss = (loss + F.cross_entropy(logits.T, targets)) / 2  # keys → queries as well
    return loss


@torch.no_grad()
def label_embeddings(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    descriptions: Sequence[Sequence[str]],
    *,
    max_length: int = 64,
) -> torch.Tensor:
    """One unit vector per label: the mean of its descriptions' sentence embeddings, renormalised.

    Args:
        descriptions: ``descriptions[y]``: one or more texts describing label ``y``.

    Shapes:
        returns float32 ``(C, D)`` on the CPU.
    """
    from metalib.embeddings import embed_texts

    if any(not group for group in descriptions):
        raise ValueError("every label needs at least one description")
    flat = [text for group in descriptions for text in group]
    vectors = embed_texts(model, tokenizer, flat, max_length=max_length)  # (sum of sizes, D), unit rows
    sizes = [len(group) for group in descriptions]
    means = torch.stack([chunk.mean(0) for chunk in vectors.split(sizes)])  # (C, D)
    return F.normalize(means, dim=1)


def zero_shot_probabilities(
    texts: torch.Tensor, labels: torch.Tensor, *, temperature: float = 0.05
) -> torch.Tensor:
    """Label probabilities from cosine similarity: ``softmax(texts @ labels.T / tau)``.

    The argmax (the prediction) does not depend on ``temperature``; the probabilities do, and so
    does the InfoNCE loss they define.

    Shapes: ``texts`` (N, D) and ``labels`` (C, D), unit rows → (N, C).
    """
    return (texts @ labels.T / temperature).softmax(dim=1)  # (N, C)
