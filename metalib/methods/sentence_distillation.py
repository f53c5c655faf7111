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

- :func:`vector_forward` and :func:`distill_sentence_vectors`: the objective and its training loop
  (:class:`metalib.train.Trainer`);
- :class:`SentenceDistillationRecipe` and :func:`distilled_tiny_bert_path`: chapter 1's tiny BERT,
  distilled from MiniLM on the Rotten Tomatoes *training* snippets, cached as a bare encoder
  (``zoo.load_encoder("tiny-bert-distilled")``).

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

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from metalib import runtime
from metalib.train import StepOutput, TrainConfig, Trainer, make_loader

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from metalib.methods.pretraining import PretrainingRecipe

__all__ = [
    "SentenceDistillationRecipe",
    "distill_sentence_vectors",
    "distilled_tiny_bert_path",
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


@dataclass(frozen=True)
class SentenceDistillationRecipe:
    """How chapter 1's tiny BERT is distilled from MiniLM; the cache key hashes all of it."""

    steps: int = 600
    batch_size: int = 128
    lr: float = 1e-3
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    max_length: int = 64
    """tokens per snippet for the student, and for the teacher's vectors"""
    n_texts: int | None = None
    """Rotten Tomatoes *training* snippets used, without labels (None: all of them)"""
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str | None = None) -> SentenceDistillationRecipe:
        """The book's recipe for ``profile`` (default: :func:`metalib.runtime.get_profile`)."""
        profile = runtime.get_profile() if profile is None else profile
        recipes = {"quick": cls(steps=60, n_texts=1024), "full": cls(), "gpu": cls(steps=3000)}
        if profile not in recipes:
            raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(recipes)}")
        return recipes[profile]


def distilled_tiny_bert_path(
    recipe: SentenceDistillationRecipe | None = None, pretraining: PretrainingRecipe | None = None
) -> Path:
    """The cache directory of chapter 1's tiny BERT (``pretraining``, default: the profile's) after
    ``recipe``'s distillation from MiniLM, built on first use: a bare ``BertModel`` with its
    tokenizer, and ``run.json`` with the recipe, the loss curve and the seconds it took. Keyed by both
    recipes and the source of the code that builds it (:func:`metalib.runtime.code_fingerprint`)."""
    import transformers
    from transformers import AutoModel, AutoTokenizer

    from metalib.data import rotten_tomatoes
    from metalib.embeddings import cached_embeddings
    from metalib.methods.pretraining import PretrainingRecipe, tiny_bert_path

    recipe = recipe or SentenceDistillationRecipe.for_profile()
    pretraining = pretraining or PretrainingRecipe.for_profile()
    key = runtime.cache_key(
        recipe=asdict(recipe),
        pretraining=asdict(pretraining),
        code=runtime.code_fingerprint(__name__),
        transformers=transformers.__version__,
    )
    entry = runtime.cache_dir() / "zoo" / f"tiny-bert-distilled-{key}"

    def build(tmp: Path) -> None:
        source = tiny_bert_path(pretraining)
        texts = rotten_tomatoes(seed=0).train.texts[: recipe.n_texts]
        start = time.perf_counter()
        teacher = cached_embeddings("minilm-l6", texts, max_length=recipe.max_length, progress=True)
        teacher_seconds = time.perf_counter() - start
        runtime.seed_everything(recipe.seed)
        encoder, tokenizer = AutoModel.from_pretrained(source), AutoTokenizer.from_pretrained(source)
        config = TrainConfig(
            max_steps=recipe.steps,
            lr=recipe.lr,
            weight_decay=recipe.weight_decay,
            warmup_ratio=recipe.warmup_ratio,
            log_every=max(1, recipe.steps // 30),
        )
        start = time.perf_counter()
        trainer = distill_sentence_vectors(
            encoder,
            tokenizer,
            texts,
            teacher,
            config,
            batch_size=recipe.batch_size,
            max_length=recipe.max_length,
            seed=recipe.seed,
        )
        encoder.cpu().save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info = {
            "recipe": asdict(recipe),
            "pretraining": asdict(pretraining),
            "n_texts": len(texts),
            "teacher_seconds": teacher_seconds,
            "seconds": time.perf_counter() - start,
            "train_rows": trainer.history.train_rows,
        }
        (tmp / "run.json").write_text(json.dumps(info, indent=1))  # written last: marks the entry done

    return runtime.build_once(
        entry, "run.json", build, f"distilling MiniLM into the tiny BERT ({recipe.steps} steps)"
    )
