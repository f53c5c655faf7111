"""Chapter 6's ProtoNet head: a projection of MiniLM's vectors meta-trained on WordNet supersense episodes.

:func:`protonet_head_path` builds it into the cache on first use and returns its directory;
:func:`protonet_head` loads it. The pool of glosses, the class splits (25 meta-training, 10
meta-validation and 10 meta-test supersenses, :func:`metalib.data.wordnet.class_splits`) and the episodes
are chapter 6's: episodes of meta-training classes train the head, fixed episodes of the
meta-validation classes choose the step kept, and no meta-test class is used. The head then serves
any task as a few-shot classifier (:class:`metalib.classifiers.PrototypeClassifier`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from metalib import runtime
from metalib.methods.protonet import ProjectionHead, ProtoNetConfig, train_protonet

__all__ = ["ProtoNetHeadRecipe", "protonet_head", "protonet_head_path"]


@dataclass(frozen=True)
class ProtoNetHeadRecipe(runtime.ProfileRecipe):
    """How the head is meta-trained (chapter 6's 5-way 5-shot ProtoNet head); the cache key hashes it."""

    per_class: tuple[int, int, int] = (160, 60, 120)
    """glosses pooled per meta-train, meta-validation and meta-test class"""
    n_way: int = 5
    k_shot: int = 5
    n_query: int = 15
    steps: int = 300
    eval_every: int = 50
    val_episodes: int = 200
    rank: int = 8
    seed: int = 0
    """the pool's draw and the training; the validation episodes use ``seed + 7``"""

    PROFILE_CHANGES = {
        "quick": dict(per_class=(30, 25, 25), steps=30, eval_every=10, val_episodes=40),
        "gpu": dict(per_class=(400, 200, 300), steps=1000, val_episodes=300),
    }


def protonet_head_path(recipe: ProtoNetHeadRecipe | None = None) -> Path:
    """The cache directory of the meta-trained head (default: the profile's recipe), built on first
    use (seconds to a minute: the pool's MiniLM vectors, then ``recipe.steps`` Adam steps):
    ``head.safetensors`` and ``run.json`` (recipe, classes per split, kept step, its validation
    accuracy, seconds)."""
    from safetensors.torch import save_file

    from metalib import data
    from metalib.embeddings import cached_embeddings
    from metalib.fewshot import episode_batch

    recipe = recipe or ProtoNetHeadRecipe.for_profile()
    key = runtime.cache_key(recipe=asdict(recipe), code=runtime.code_fingerprint(__name__))
    entry = runtime.cache_dir() / "zoo" / f"protonet-wordnet-{key}"

    def build(tmp: Path) -> None:
        wordnet, splits = data.wordnet_supersenses(), data.class_splits(seed=0)
        pool = data.pooled_rows(wordnet, splits, recipe.per_class, seed=recipe.seed)
        texts, labels = [wordnet.glosses[i] for i in pool], [wordnet.labels[i] for i in pool]
        features = cached_embeddings("minilm-l6", texts)  # (R, 384), unit rows
        val_sampler = data.EpisodeSampler(
            labels, recipe.n_way, recipe.k_shot, recipe.n_query, recipe.seed + 7,
            classes=splits["val"], n_episodes=recipe.val_episodes,
        )  # fmt: skip
        config = ProtoNetConfig(
            n_way=recipe.n_way, k_shot=recipe.k_shot, n_query=recipe.n_query, steps=recipe.steps,
            eval_every=recipe.eval_every, rank=recipe.rank, seed=recipe.seed,
        )  # fmt: skip
        head, history = train_protonet(
            features, labels, splits["train"], config, val=episode_batch(features, list(val_sampler))
        )
        save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(tmp / "head.safetensors"))
        info = {
            "recipe": asdict(recipe),
            "dim": features.shape[1],
            "splits": splits,
            "best_step": history.best_step,
            "val_accuracy": history.best_accuracy,
            "seconds": history.seconds,
        }
        (tmp / "run.json").write_text(json.dumps(info, indent=1))  # written last: marks the entry done

    return runtime.build_once(
        entry,
        "run.json",
        build,
        f"meta-training the ProtoNet head on WordNet episodes ({recipe.steps} steps)",
    )


def protonet_head(recipe: ProtoNetHeadRecipe | None = None) -> ProjectionHead:
    """The meta-trained :class:`~metalib.methods.protonet.ProjectionHead` (eval mode), built first if needed.

    Shapes: maps MiniLM vectors ``(..., 384)`` to ``(..., 384)``.
    """
    from safetensors.torch import load_file

    recipe = recipe or ProtoNetHeadRecipe.for_profile()
    path = protonet_head_path(recipe)
    info = json.loads((path / "run.json").read_text())
    head = ProjectionHead(info["dim"], recipe.rank, seed=recipe.seed)
    head.load_state_dict(load_file(str(path / "head.safetensors")))
    return head.eval()
