"""Chapter 1's tiny BERT after learning MiniLM's sentence vectors on unlabelled review snippets.

:func:`distilled_tiny_bert_path` builds it into the cache on first use (see
:mod:`metalib.methods.sentence_distillation` for the objective) and returns its directory.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from metalib import runtime
from metalib.methods.pretraining import PretrainingRecipe
from metalib.methods.sentence_distillation import distill_sentence_vectors
from metalib.train import TrainConfig

__all__ = ["SentenceDistillationRecipe", "distilled_tiny_bert_path"]


@dataclass(frozen=True)
class SentenceDistillationRecipe(runtime.ProfileRecipe):
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

    PROFILE_CHANGES = {"quick": dict(steps=60, n_texts=1024), "gpu": dict(steps=3000)}


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
    from metalib.recipes.tiny_bert import tiny_bert_path

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
