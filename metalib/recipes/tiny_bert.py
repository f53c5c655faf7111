"""Chapter 1's tiny BERT, pretrained (masked language model) into the cache on first use.

:func:`tiny_bert_path` builds it once per recipe (about 5 minutes in the full profile on 2 cores)
and returns its directory; :func:`tiny_bert` loads it with its tokenizer and training history.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from metalib import runtime
from metalib.methods.pretraining import PretrainingRecipe, PretrainingRun, pretrain_tiny_bert
from metalib.train import History

__all__ = ["tiny_bert", "tiny_bert_path"]


def tiny_bert_path(recipe: PretrainingRecipe | None = None) -> Path:
    """The cache directory of the tiny BERT for ``recipe``, pretrained on first use.

    Keyed by the recipe and the source of the code that trains it
    (:func:`metalib.runtime.code_fingerprint`), so a quick-profile model never serves a full-profile
    run and changed training code trains anew. Several processes may call this at once: one trains,
    the others wait.
    """
    import transformers

    recipe = recipe or PretrainingRecipe.for_profile()
    key = runtime.cache_key(
        recipe=asdict(recipe), code=runtime.code_fingerprint(__name__), transformers=transformers.__version__
    )
    entry = runtime.cache_dir() / "zoo" / f"tiny-bert-{key}"

    def build(tmp: Path) -> None:
        run = pretrain_tiny_bert(recipe)
        run.model.save_pretrained(tmp)
        run.tokenizer.save_pretrained(tmp)
        info = {
            "recipe": asdict(recipe),
            "seconds": run.seconds,
            "train_tokens": run.train_tokens,
            "train_rows": run.history.train_rows,
            "eval_rows": run.history.eval_rows,
        }
        (tmp / "run.json").write_text(json.dumps(info, indent=1))  # written last: marks the entry done

    return runtime.build_once(entry, "run.json", build, f"pretraining the tiny BERT ({recipe.steps} steps)")


def tiny_bert(recipe: PretrainingRecipe | None = None) -> PretrainingRun:
    """The chapter-1 tiny BERT (``BertForPreTraining``) from the cache, pretrained there on first use."""
    from transformers import AutoTokenizer, BertForPreTraining

    path = tiny_bert_path(recipe)
    info = json.loads((path / "run.json").read_text())
    return PretrainingRun(
        model=BertForPreTraining.from_pretrained(path).eval(),
        tokenizer=AutoTokenizer.from_pretrained(path),
        history=History(info["train_rows"], info["eval_rows"]),
        recipe=PretrainingRecipe(**info["recipe"]),
        seconds=info["seconds"],
        train_tokens=info["train_tokens"],
        path=path,
    )
