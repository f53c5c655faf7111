"""The models the book builds, by name: built into the metalib cache on first use, then loaded.

- ``"tiny-bert-pretrained"``: chapter 1's tiny BERT (:func:`metalib.recipes.tiny_bert.tiny_bert_path`);
- ``"tiny-bert-scratch"``: the same architecture and tokenizer, randomly initialised;
- ``"tiny-bert-distilled"``: that tiny BERT after learning MiniLM's sentence vectors
  (:func:`metalib.recipes.distilled.distilled_tiny_bert_path`);
- ``"minilm-l6-sentiment"``: chapter 2's fine-tuned sentiment classifier, chapter 5's teacher
  (:func:`metalib.recipes.teacher.sentiment_classifier_path`).

Besides these encoders, :func:`metalib.recipes.protonet_head.protonet_head` builds chapter 6's
ProtoNet head, a projection of MiniLM's vectors meta-trained on WordNet supersense episodes.

Each is built for the current profile (:func:`metalib.runtime.get_profile`); building takes minutes
(the tiny BERT about 5 in the full profile on 2 cores, the teacher about 9), loading a second. Any
other name goes to :func:`metalib.zoo.load_encoder` unchanged.

Example:
    >>> from metalib import recipes
    >>> path = recipes.build_encoder("tiny-bert-pretrained")  # built once, then found  # doctest: +SKIP
    >>> model, tokenizer = recipes.load_encoder("tiny-bert-pretrained", num_labels=2)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from metalib import zoo

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

BUILT_ENCODERS = ("tiny-bert-pretrained", "tiny-bert-scratch", "tiny-bert-distilled", "minilm-l6-sentiment")
"""The encoders the book builds, by name (the others come from :mod:`metalib.zoo`)."""


def build_encoder(name: str) -> Path:
    """The cache directory of the book's model ``name`` (one of :data:`BUILT_ENCODERS`), built first
    if it is not there yet (minutes; several processes may call this at once: one builds, the
    others wait)."""
    if name in ("tiny-bert-pretrained", "tiny-bert-scratch"):
        from metalib.recipes.tiny_bert import tiny_bert_path

        return tiny_bert_path()
    if name == "tiny-bert-distilled":
        from metalib.recipes.distilled import distilled_tiny_bert_path

        return distilled_tiny_bert_path()
    if name == "minilm-l6-sentiment":
        from metalib.recipes.teacher import sentiment_classifier_path

        return sentiment_classifier_path()
    raise ValueError(f"{name!r} is not a model the book builds; expected one of {', '.join(BUILT_ENCODERS)}")


def encoder_source(name: str) -> str:
    """Where ``name`` loads from: a built model's cache directory (built first if needed), else
    :func:`metalib.zoo.encoder_source`."""
    return str(build_encoder(name)) if name in BUILT_ENCODERS else zoo.encoder_source(name)


def load_encoder(name: str = "minilm-l6", **kwargs: Any) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """:func:`metalib.zoo.load_encoder` that also knows :data:`BUILT_ENCODERS` (building them first if
    needed); ``"tiny-bert-scratch"`` is the tiny BERT's architecture and tokenizer with random weights.
    ``"minilm-l6-sentiment"`` with ``num_labels=2`` keeps its trained head."""
    if name not in BUILT_ENCODERS:
        return zoo.load_encoder(name, **kwargs)
    if name == "tiny-bert-scratch":
        kwargs["random_init"] = True
    return zoo.load_encoder(str(build_encoder(name)), **kwargs)
