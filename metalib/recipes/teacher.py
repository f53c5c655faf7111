"""Chapter 2's fine-tuned sentiment classifier (MiniLM, every weight trained), chapter 5's teacher.

:func:`sentiment_classifier_path` fine-tunes it into the cache on first use (about 9 minutes in the
full profile on 2 cores) and returns its directory.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from metalib import runtime, zoo
from metalib.data import rotten_tomatoes
from metalib.evaluate import accuracy_estimate
from metalib.methods.transfer import fine_tune, predict_logits, stratified_subset
from metalib.train import TrainConfig

__all__ = ["ClassifierRecipe", "sentiment_classifier_path"]


@dataclass(frozen=True)
class ClassifierRecipe(runtime.ProfileRecipe):
    """Everything that determines chapter 2's fine-tuned sentiment classifier (chapter 5's teacher).

    The model fine-tunes all its weights on ``n_train`` labelled Rotten Tomatoes snippets of the
    movie-disjoint training split (:func:`~metalib.methods.transfer.stratified_subset` with
    ``seed``; None = all), keeping the epoch with the best validation accuracy.
    """

    model: str = "minilm-l6"
    n_train: int | None = 3000
    epochs: int = 3
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    batch_size: int = 32
    max_length: int = 64
    seed: int = 0

    PROFILE_CHANGES = {"quick": dict(n_train=128, epochs=1), "gpu": dict(n_train=None, epochs=3)}


def sentiment_classifier_path(recipe: ClassifierRecipe | None = None, progress: bool = True) -> Path:
    """The cache directory of the fine-tuned sentiment classifier for ``recipe``, trained on first use.

    The directory loads with ``AutoModelForSequenceClassification.from_pretrained`` (or
    ``recipes.load_encoder("minilm-l6-sentiment", num_labels=2)``) and holds ``run.json``: the recipe,
    the training history, wall time and the validation and test accuracy. Keyed by the recipe and the
    source of the code that trains it (:func:`metalib.runtime.code_fingerprint`); several processes
    may call it at once (one trains, the others wait).
    """
    import transformers

    recipe = recipe or ClassifierRecipe.for_profile()
    key = runtime.cache_key(
        recipe=asdict(recipe),
        code=runtime.code_fingerprint(__name__),
        source=zoo.encoder_source(recipe.model),
        transformers=transformers.__version__,
    )
    entry = runtime.cache_dir() / "zoo" / f"{Path(recipe.model).name}-sentiment-{key}"

    def build(tmp: Path) -> None:
        splits = rotten_tomatoes(seed=0)
        rows = stratified_subset(splits.train.labels, recipe.n_train, recipe.seed)
        train = ([splits.train.texts[i] for i in rows], [splits.train.labels[i] for i in rows])
        runtime.seed_everything(recipe.seed)
        model, tokenizer = zoo.load_encoder(recipe.model, num_labels=2)
        config = TrainConfig(
            epochs=recipe.epochs,
            lr=recipe.lr,
            weight_decay=recipe.weight_decay,
            warmup_ratio=recipe.warmup_ratio,
            monitor="val_accuracy",
            mode="max",
            progress=progress,
        )
        start = time.perf_counter()
        val = (splits.val.texts, splits.val.labels)
        trainer = fine_tune(
            model,
            tokenizer,
            train,
            val,
            config,
            batch_size=recipe.batch_size,
            max_length=recipe.max_length,
            seed=recipe.seed,
            group_by_length=True,
        )
        seconds = time.perf_counter() - start
        scores = {}
        for name, split in (("val", splits.val), ("test", splits.test)):
            predicted = predict_logits(trainer, tokenizer, split.texts, recipe.max_length).argmax(-1)
            scores[name] = vars(accuracy_estimate((predicted == torch.tensor(split.labels)).tolist()))
        trainer.unwrapped_model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info = {
            "recipe": asdict(recipe),
            "seconds": seconds,
            "train_rows": trainer.history.train_rows,
            "eval_rows": trainer.history.eval_rows,
            **{f"{name}_accuracy": score for name, score in scores.items()},
        }
        (tmp / "run.json").write_text(json.dumps(info, indent=1))  # written last: marks the entry done

    return runtime.build_once(entry, "run.json", build, f"fine-tuning {recipe.model} for sentiment")
