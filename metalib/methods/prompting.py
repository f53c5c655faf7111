"""Prompting a causal language model for classification: templates, verbalizers, scoring, calibration.

A classifier without training: wrap the input in a *template* (an instruction and a cue such as
``"Sentiment:"``), let a *verbalizer* name each label with answer words (``positive``/``negative``),
and predict the label whose answer the model finds most likely after the prompt:

    score(x, y) = log p_LM(answer(y) | template(x)),   prediction = argmax_y score(x, y).

The pieces, each usable alone:

- :class:`PromptTemplate` renders prompts, plain or through the model's chat template, with optional
  in-context demonstrations (:func:`sample_demonstrations` draws them, seeded);
- :class:`Verbalizer` maps labels to answer words (several per label, several tokens per word);
- :func:`score_labels` computes the scores in batches: the prompt prefix shared by all rows
  (instruction, demonstrations) is run once and its key/value cache reused, rows are left-padded,
  and multi-token answers are scored in one extra pass over the cache;
- :func:`generate_answers` and :func:`parse_answers`: the alternative of generating text and
  reading the label from it (which can fail to parse);
- :func:`content_free_prior` and :func:`calibrate`: contextual calibration (Zhao et al. 2021);
- :func:`score_prompts`: all of it for one template, verbalizer and set of demonstrations, as
  :class:`PromptScores` (raw and calibrated predictions and accuracies);
- :func:`score_answer_sets`: several verbalizers scored from the same forward passes;
- :func:`template_sweep`: several templates scored on the same texts, raw and calibrated;
- :func:`scoring_speeds`: what batching and the shared prefix buy, measured;
- :func:`generation_study`: generating and parsing against scoring, on the same texts;
- :func:`in_context_study`: accuracy against the number of demonstrations, over random draws, and
  :func:`summarize_in_context`: the numbers a reader asks of it.

Used by chapter 3 (zero-shot prompts).

Example:
    >>> from metalib import zoo                                                       # doctest: +SKIP
    >>> model, tokenizer = zoo.load_causal_lm("smollm2-135m-instruct")                # doctest: +SKIP
    >>> template = PromptTemplate("review", "", "Review: {text}\\nSentiment:")         # doctest: +SKIP
    >>> verbalizer = Verbalizer((("negative",), ("positive",)))                       # doctest: +SKIP
    >>> prompts = template.render(tokenizer, ["a fine film"], verbalizer)             # doctest: +SKIP
    >>> score_labels(model, tokenizer, prompts, template.answers(verbalizer)).shape   # doctest: +SKIP
    torch.Size([1, 2])

References:
    Brown et al. 2020, "Language models are few-shot learners".
    Schick and Schütze 2021, "Exploiting cloze questions for few shot text classification and natural
    language inference".
    Zhao et al. 2021, "Calibrate before use: improving few-shot performance of language models".
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from metalib.evaluate import Estimate, prediction_accuracy

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CONTENT_FREE",
    "PromptScores",
    "PromptTemplate",
    "Verbalizer",
    "calibrate",
    "content_free_prior",
    "generate_answers",
    "generation_study",
    "in_context_study",
    "parse_answers",
    "sample_demonstrations",
    "score_answer_sets",
    "score_labels",
    "score_prompts",
    "scoring_speeds",
    "summarize_in_context",
    "template_sweep",
]

CONTENT_FREE: tuple[str, ...] = ("N/A", "", "[MASK]")
"""Content-free inputs (Zhao et al. 2021), which carry no label information."""


@dataclass(frozen=True)
class Verbalizer:
    """Answer words for each label: ``words[y]`` are the strings that mean label ``y``.

    A label's probability is the total probability of its words (log-sum-exp of their scores); a
    word may span several tokens, and its score is the sum of its tokens' log-probabilities.

    Args:
        words: one non-empty tuple of words per label, e.g. ``(("negative",), ("positive", "good"))``.
    """

    words: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        if len(self.words) < 2 or any(not group or "" in group for group in self.words):
            raise ValueError(
                f"words={self.words!r}: give one non-empty tuple of non-empty words per label, "
                "at least two labels"
            )

    @property
    def num_labels(self) -> int:
        """The number of labels ``C``."""
        return len(self.words)


@dataclass(frozen=True)
class PromptTemplate:
    """How an input (and optional demonstrations) becomes a prompt.

    Plain prompt: ``instruction``, then each demonstration as ``example`` followed by its answer,
    then the input as ``example``, joined by ``separator``. Chat prompt (``chat=True``): the same
    text as a conversation through the tokenizer's chat template — the instruction opens the first
    user turn, each demonstration is a user turn answered by an assistant turn, and the prompt ends
    where the assistant's reply begins.

    Args:
        name: a short label for tables and plots.
        instruction: the task description shown once before the examples ("" for none).
        example: how one input is shown; must contain ``{text}``, e.g. ``"Review: {text}\\nSentiment:"``.
        chat: render through ``tokenizer.apply_chat_template``.
        separator: between instruction and examples (plain prompts).
    """

    name: str
    instruction: str
    example: str
    chat: bool = False
    separator: str = "\n\n"

    def __post_init__(self) -> None:
        if "{text}" not in self.example:
            raise ValueError(f"example={self.example!r} must contain '{{text}}' where the input goes")

    @property
    def answer_prefix(self) -> str:
        """The text before an answer word, a space after a plain cue and nothing at a chat reply's start."""
        return "" if self.chat else " "

    def answers(self, verbalizer: Verbalizer) -> list[list[str]]:
        """The answer strings to score for each label (``answer_prefix`` + word)."""
        return [[self.answer_prefix + word for word in group] for group in verbalizer.words]

    def render(
        self,
        tokenizer: PreTrainedTokenizerBase,
        texts: Sequence[str],
        verbalizer: Verbalizer,
        demonstrations: Sequence[tuple[str, int]] = (),
    ) -> list[str]:
        """One prompt per text; ``demonstrations`` are ``(text, label)`` pairs shown first, answered
        with the label's first word. All prompts share the text up to the input (the prefix that
        :func:`score_labels` computes once)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        turns = [(self.example.format(text=t), verbalizer.words[y][0]) for t, y in demonstrations]
        if not self.chat:
            head = [self.instruction] if self.instruction else []
            shots = [f"{shown}{self.answer_prefix}{answer}" for shown, answer in turns]
            return [self.separator.join([*head, *shots, self.example.format(text=t)]) for t in texts]
        prompts = []
        for text in texts:
            messages = []
            for shown, answer in turns:
                messages += [{"role": "user", "content": shown}, {"role": "assistant", "content": answer}]
            messages.append({"role": "user", "content": self.example.format(text=text)})
            if self.instruction:
                messages[0] = {"role": "user", "content": self.instruction + "\n\n" + messages[0]["content"]}
            prompts.append(
                tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            )
        return prompts


def sample_demonstrations(labels: Sequence[int], k: int, seed: int) -> np.ndarray:
    """Indices of ``k`` distinct demonstrations drawn at random from a pool, in random order.

    Each ``seed`` gives another draw *and* another order; labels are not balanced (a draw of
    four may hold three of one label, which is part of what calibration corrects).

    Returns:
        int64 array of shape ``(k,)``.
    """
    if not 0 <= k <= len(labels):
        raise ValueError(f"k={k} must be between 0 and the pool size {len(labels)}")
    return np.random.default_rng(seed).choice(len(labels), size=k, replace=False).astype(np.int64)


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """How many leading token ids all ``sequences`` share, leaving every sequence >= 1 token of its own.

    Example:
        >>> common_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]])
        2
    """
    first = sequences[0]
    length = min(len(s) for s in sequences) - 1  # every row keeps >= 1 token of its own
    for i in range(max(length, 0)):
        if any(s[i] != first[i] for s in sequences):
            return i
    return max(length, 0)


@torch.no_grad()
def score_labels(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    answers: Sequence[Sequence[str]],
    *,
    batch_size: int = 16,
    share_prefix: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """Log-likelihood of each label's answers after each prompt, in batches.

    ``scores[i, y] = log sum_{a in answers[y]} p(a | prompts[i])``, where ``p(a | prompt)`` is the
    product over the answer's tokens (the answer tokenised on its own, appended to the prompt's
    tokens). Not length-normalised: a longer answer is less likely, other things equal.

    How: the longest token prefix shared by all prompts is run once and its key/value cache copied
    into every batch (``share_prefix``); the rest of each prompt is left-padded, with explicit
    position ids and an attention mask, so the next-token distribution sits at the last position
    of every row; answers longer than one token are fed in one more pass over the cache, each row's
    cache repeated once per such answer. Equal to scoring each prompt alone to float32 precision.

    Args:
        model: a causal LM in eval mode.
        tokenizer: its tokenizer (prompts are tokenised with its default special tokens, answers
            without any).
        prompts: N strings.
        answers: C label groups of answer strings (see :meth:`PromptTemplate.answers`).
        batch_size: prompts per forward pass.
        share_prefix: compute the common prefix once (False: every row runs its full prompt).
        progress: show a tqdm bar over batches.

    Shapes:
        returns float32 ``(N, C)`` on the CPU.
    """
    from tqdm.auto import tqdm
    from transformers import DynamicCache

    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of strings, not one string")
    device = next(model.parameters()).device
    ids = tokenizer(list(prompts))["input_ids"]
    flat = [
        (y, tokenizer(a, add_special_tokens=False)["input_ids"])
        for y, group in enumerate(answers)
        for a in group
    ]
    if any(not tokens for _, tokens in flat):
        raise ValueError("an answer string tokenises to nothing")
    owner = torch.tensor([y for y, _ in flat])  # (U,) label of each answer
    first_token = torch.tensor([tokens[0] for _, tokens in flat])  # (U,)
    multi = [u for u, (_, tokens) in enumerate(flat) if len(tokens) > 1]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    shared = common_prefix_length(ids) if share_prefix and len(ids) > 1 else 0
    prefix_cache = None
    if shared:
        prefix = torch.tensor([ids[0][:shared]], device=device)  # (1, P)
        prefix_cache = model(prefix, use_cache=True).cache
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths per batch
    out = torch.empty(len(ids), len(flat))  # (N, U) answer log-probs
    for start in tqdm(range(0, len(ids), batch_size), desc="score", disable=not progress):
        rows = order[start : start + batch_size]
        tails = [ids[i][shared:] for i in rows]
        width = max(len(t) for t in tails)
        input_ids = torch.tensor([[pad_id] * (width - len(t)) + t for t in tails], device=device)  # (B, S)
        own_mask = torch.tensor(
            [[0] * (width - len(t)) + [1] * len(t) for t in tails], device=device
        )  # (B, S)
        mask = torch.cat([own_mask.new_ones(len(rows), shared), own_mask], dim=1)  # (B, P + S)
        positions = (shared + own_mask.cumsum(1) - 1).clamp(min=shared)  # (B, S): pads share a position
        cache = DynamicCache(config=model.config)
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(rows))
        result = model(  # logits of the last position only: the output layer is a fifth of the model
            input_ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=bool(multi),
            logits_to_keep=1,
        )
        next_token = result.logits[:, -1].float().log_softmax(-1)  # (B, V)
        scores = next_token[:, first_token]  # (B, U): the first token of every answer
        if multi:
            scores[:, multi] += _continuation(model, result.cache, mask, [flat[u][1] for u in multi], pad_id)
        out[rows] = scores.cpu()
    return torch.stack([out[:, owner == y].logsumexp(dim=1) for y in range(len(answers))], dim=1)  # (N, C)


def _continuation(
    model: PreTrainedModel, cache: object, mask: torch.Tensor, answers: list[list[int]], pad_id: int
) -> torch.Tensor:
    """log p(answer tokens 2.. | prompt, answer token 1) for M multi-token answers, all B rows at once.

    Shapes: ``mask`` (B, K) of the cached prompt; returns (B, M).
    """
    batch, m, width = mask.shape[0], len(answers), max(len(a) for a in answers) - 1
    feed = torch.tensor(
        [a[:-1] + [pad_id] * (width - len(a) + 1) for a in answers], device=mask.device
    )  # (M, L)
    target = torch.tensor(
        [a[1:] + [pad_id] * (width - len(a) + 1) for a in answers], device=mask.device
    )  # (M, L)
    valid = torch.tensor(
        [[1] * (len(a) - 1) + [0] * (width - len(a) + 1) for a in answers], device=mask.device
    )
    cache.batch_repeat_interleave(m)  # rows ordered (row 0: answers 0..M-1, row 1: ...)
    prompt_mask = mask.repeat_interleave(m, dim=0)  # (B*M, K)
    positions = prompt_mask.sum(1, keepdim=True) + torch.arange(width, device=mask.device)  # (B*M, L)
    logits = model(
        feed.repeat(batch, 1),  # (B*M, L)
        attention_mask=torch.cat([prompt_mask, valid.repeat(batch, 1)], dim=1),
        position_ids=positions,
        cache=cache,
    ).logits.float()  # (B*M, L, V)
    token_lp = logits.log_softmax(-1).gather(-1, target.repeat(batch, 1)[..., None])[..., 0]  # (B*M, L)
    return (token_lp * valid.repeat(batch, 1)).sum(1).view(batch, m)  # (B, M)


@torch.no_grad()
def generate_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 8,
    batch_size: int = 16,
    progress: bool = False,
) -> list[str]:
    """Greedy continuations of ``prompts`` (new text only, special tokens removed), left-padded batches."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    texts: list[str] = []
    try:
        for start in tqdm(range(0, len(prompts), batch_size), desc="generate", disable=not progress):
            batch = tokenizer(
                list(prompts[start : start + batch_size]), return_tensors="pt", padding=True
            ).to(device)
            new = model.generate(
                **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )[:, batch["input_ids"].shape[1] :]  # (B, new tokens)
            texts += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return texts


def parse_answers(generations: Sequence[str], verbalizer: Verbalizer) -> np.ndarray:
    """The label each generated text names, or -1 when it names none or more than one.

    A label is named when one of its words occurs as a whole word, case-insensitively
    ("Positive." names *positive*; "not positive" does too — parsing is that crude).

    Returns:
        int64 array of shape ``(N,)``; ``(result == -1).sum()`` counts the parse failures.
    """
    patterns = [re.compile(r"\b(" + "|".join(map(re.escape, g)) + r")\b", re.I) for g in verbalizer.words]
    out = np.full(len(generations), -1, dtype=np.int64)
    for i, text in enumerate(generations):
        named = [y for y, pattern in enumerate(patterns) if pattern.search(text)]
        if len(named) == 1:
            out[i] = named[0]
    return out


def content_free_prior(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    verbalizer: Verbalizer,
    demonstrations: Sequence[tuple[str, int]] = (),
    content_free: Sequence[str] = CONTENT_FREE,
) -> torch.Tensor:
    """The model's label distribution for inputs that carry no information: ``p_cf``, shape ``(C,)``.

    Each content-free input is put into the template (with the same demonstrations), its label
    scores normalised over the labels, and the distributions averaged.
    """
    prompts = template.render(tokenizer, content_free, verbalizer, demonstrations)
    scores = score_labels(
        model, tokenizer, prompts, template.answers(verbalizer)
    )  # shares the demonstrations
    return scores.softmax(dim=1).mean(dim=0)  # (C,)


def calibrate(scores: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Contextual calibration: label probabilities divided by the content-free prior, renormalised.

    Zhao et al. (2021) set ``W = diag(p_cf)^-1``, ``b = 0`` and predict ``argmax W p``; here ``W p``
    is renormalised to sum to one (the paper applies a softmax; the argmax is the same). A
    content-free input then maps to the uniform distribution.

    Shapes: ``scores`` (N, C) log-likelihoods, ``prior`` (C,) → (N, C) probabilities.
    """
    calibrated = scores.float().softmax(dim=1) / prior  # (N, C) = W p
    return calibrated / calibrated.sum(dim=1, keepdim=True)


@dataclass(frozen=True)
class PromptScores:
    """One template's label scores on N texts: ``scores`` (N, C) log-likelihoods and the
    content-free ``prior`` (C,) for the same template and demonstrations."""

    scores: torch.Tensor
    prior: torch.Tensor

    def predictions(self, calibrated: bool = False) -> torch.Tensor:
        """The predicted label of every text, shape (N,): raw argmax, or after :func:`calibrate`."""
        return (calibrate(self.scores, self.prior) if calibrated else self.scores).argmax(dim=1)

    def accuracy(self, labels: Sequence[int] | torch.Tensor, calibrated: bool = False) -> Estimate:
        """Accuracy against ``labels`` (N,) with its Wilson 95% interval."""
        return prediction_accuracy(self.predictions(calibrated), labels)

    def share(self, label: int, calibrated: bool = False) -> float:
        """The share of texts predicted as ``label`` (a lopsided template answers one label to most)."""
        return (self.predictions(calibrated) == label).float().mean().item()

    def __getitem__(self, rows: Sequence[int] | np.ndarray | slice) -> PromptScores:
        """The scores of a subset of the texts (same prior)."""
        return PromptScores(self.scores[rows], self.prior)


def score_prompts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    texts: Sequence[str],
    verbalizer: Verbalizer,
    demonstrations: Sequence[tuple[str, int]] = (),
    *,
    batch_size: int = 16,
    progress: bool = False,
) -> PromptScores:
    """:func:`score_labels` of ``texts`` in ``template`` (with ``demonstrations``), and the matching
    :func:`content_free_prior`: one forward pass per text, plus one per content-free input."""
    prompts = template.render(tokenizer, texts, verbalizer, demonstrations)
    scores = score_labels(
        model, tokenizer, prompts, template.answers(verbalizer), batch_size=batch_size, progress=progress
    )
    return PromptScores(scores, content_free_prior(model, tokenizer, template, verbalizer, demonstrations))


def score_answer_sets(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    answer_sets: Mapping[str, Sequence[Sequence[str]]],
    *,
    batch_size: int = 16,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """:func:`score_labels` for several answer sets (verbalizers) after the same prompts, in one
    pass: every distinct answer string is scored once, then summed per label of each set.

    All answers after a prompt come from the same next-token distribution, so comparing
    verbalizers costs one forward pass per prompt, not one per verbalizer.

    Args:
        answer_sets: name -> C label groups of answer strings (:meth:`PromptTemplate.answers`).

    Shapes:
        returns name -> float32 ``(N, C)`` log-likelihoods, equal to :func:`score_labels` of that set.
    """
    strings = list(dict.fromkeys(a for groups in answer_sets.values() for group in groups for a in group))
    column = {a: j for j, a in enumerate(strings)}
    each = score_labels(
        model, tokenizer, prompts, [[a] for a in strings], batch_size=batch_size, progress=progress
    )  # (N, U): one column per distinct answer string
    return {
        name: torch.stack([each[:, [column[a] for a in group]].logsumexp(dim=1) for group in groups], dim=1)
        for name, groups in answer_sets.items()
    }


def in_context_study(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    texts: Sequence[str],
    labels: Sequence[int],
    verbalizer: Verbalizer,
    pool: tuple[Sequence[str], Sequence[int]],
    k_shots: Sequence[int],
    draws: int,
    *,
    zero_shot: PromptScores | None = None,
    positive: int = 1,
    batch_size: int = 16,
    progress: bool = False,
) -> pd.DataFrame:
    """Few-shot prompting at each ``k`` in ``k_shots``: ``draws`` random sets of ``k`` demonstrations
    from ``pool`` (texts, labels), seeds ``1000 k + draw`` of :func:`sample_demonstrations`, each
    scored on all ``texts`` with :func:`score_prompts` (raw and calibrated). ``k = 0`` is one row:
    ``zero_shot`` (scores of these texts without demonstrations, if already computed) or scored here.

    Cost: ``len(texts) + 3`` prompts per draw, each ``k`` demonstrations longer.

    Returns:
        a ``pandas.DataFrame``, a row per draw: ``k``, ``draw``, ``positive demos`` (demonstrations
        labelled ``positive``), ``last demo`` (the last demonstration's label, NaN for ``k = 0``),
        ``prompt tokens`` (of the first text's prompt), ``answers positive`` (share of raw
        predictions), ``raw`` and ``calibrated`` accuracy, ``texts/s`` (NaN where ``zero_shot`` was
        reused).
    """
    import pandas as pd

    pool_texts, pool_labels = pool
    rows = []
    for k in k_shots:
        for draw in range(draws if k else 1):
            index = sample_demonstrations(pool_labels, k, seed=1000 * k + draw)
            demos = [(pool_texts[i], int(pool_labels[i])) for i in index]
            start = time.perf_counter()
            if k == 0 and zero_shot is not None:
                result, speed = zero_shot, float("nan")
            else:
                result = score_prompts(
                    model,
                    tokenizer,
                    template,
                    texts,
                    verbalizer,
                    demos,
                    batch_size=batch_size,
                    progress=progress,
                )
                speed = len(texts) / (time.perf_counter() - start)
            first_prompt = template.render(tokenizer, [texts[0]], verbalizer, demos)[0]
            rows.append(
                {
                    "k": k,
                    "draw": draw,
                    "positive demos": sum(y == positive for _, y in demos),
                    "last demo": demos[-1][1] if demos else float("nan"),
                    "prompt tokens": len(tokenizer(first_prompt)["input_ids"]),
                    "answers positive": result.share(positive),
                    "raw": result.accuracy(labels).mean,
                    "calibrated": result.accuracy(labels, calibrated=True).mean,
                    "texts/s": speed,
                }
            )
    return pd.DataFrame(rows)


def template_sweep(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    templates: Sequence[PromptTemplate],
    texts: Sequence[str],
    labels: Sequence[int] | torch.Tensor,
    verbalizer: Verbalizer,
    *,
    positive: int = 1,
    batch_size: int = 16,
    progress: bool = False,
) -> pd.DataFrame:
    """:func:`score_prompts` of every template on the same ``texts``: one row per template.

    Cost: ``len(templates) * (len(texts) + 3)`` prompts.

    Returns:
        a ``pandas.DataFrame`` in the order of ``templates``, with columns ``template`` (its name), ``format``
        (``"chat"`` or ``"plain"``), ``raw`` and ``calibrated`` accuracy as
        :class:`~metalib.evaluate.Estimate`, ``answers positive`` (share of raw predictions of label
        ``positive``) and ``p_cf(positive)`` (the content-free prior of that label).
    """
    import pandas as pd

    rows = []
    for template in templates:
        result = score_prompts(
            model, tokenizer, template, texts, verbalizer, batch_size=batch_size, progress=progress
        )
        rows.append({
            "template": template.name,
            "format": "chat" if template.chat else "plain",
            "raw": result.accuracy(labels),
            "calibrated": result.accuracy(labels, calibrated=True),
            "answers positive": result.share(positive),
            "p_cf(positive)": result.prior[positive].item(),
        })  # fmt: skip
    return pd.DataFrame(rows)


def scoring_speeds(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    answers: Sequence[Sequence[str]],
    *,
    batch_size: int = 16,
) -> tuple[dict[str, float], float]:
    """Prompts per second of :func:`score_labels` three ways, measured one after the other.

    The ways are ``"one prompt at a time"``, ``"batched"`` (``batch_size`` prompts per pass) and
    ``"batched + shared prefix"`` (the common prefix run once). All three compute the same scores.

    Returns:
        ``(speeds, max_difference)``, prompts per second by way and the largest absolute difference
        between any way's scores and those of one prompt at a time (float32 rounding: below 1e-3).
    """
    ways = {
        "one prompt at a time": dict(batch_size=1, share_prefix=False),
        "batched": dict(batch_size=batch_size, share_prefix=False),
        "batched + shared prefix": dict(batch_size=batch_size, share_prefix=True),
    }
    speeds, scores = {}, {}
    for name, kwargs in ways.items():
        start = time.perf_counter()
        scores[name] = score_labels(model, tokenizer, prompts, answers, **kwargs)
        speeds[name] = len(prompts) / (time.perf_counter() - start)
    reference = scores["one prompt at a time"]
    return speeds, max((s - reference).abs().max().item() for s in scores.values())


def generation_study(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    texts: Sequence[str],
    labels: Sequence[int] | torch.Tensor,
    verbalizer: Verbalizer,
    *,
    scores: torch.Tensor | None = None,
    positive: int = 1,
    max_new_tokens: int = 8,
    batch_size: int = 16,
    progress: bool = False,
) -> tuple[dict[str, float], list[str]]:
    """Generating an answer and parsing it, against scoring the labels, on the same ``texts``.

    Args:
        scores: ``(N, C)`` raw label scores of these texts in this template, if already computed
            (else :func:`score_labels` computes them).
        positive: the label whose share among parsed answers is reported.

    Returns:
        ``(row, generations)``, where ``row`` holds ``parse failures`` (count), ``failure rate``,
        ``accuracy, parsing (failure = wrong)``, ``accuracy among parsed`` and ``parsed as positive``
        (NaN when nothing parsed), ``accuracy, scoring`` (raw argmax of ``scores``) and
        ``generation, texts/s``; ``generations`` are the N generated strings.
    """
    labels = torch.as_tensor(labels)
    prompts = template.render(tokenizer, texts, verbalizer)
    start = time.perf_counter()
    outputs = generate_answers(
        model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress
    )
    seconds = time.perf_counter() - start
    parsed = torch.from_numpy(parse_answers(outputs, verbalizer))  # (N,), -1 = no label named
    if scores is None:
        scores = score_labels(model, tokenizer, prompts, template.answers(verbalizer), batch_size=batch_size)
    ok = parsed >= 0
    among = (lambda t: t.float().mean().item()) if ok.any() else (lambda t: float("nan"))
    row = {
        "parse failures": int((~ok).sum()),
        "failure rate": int((~ok).sum()) / len(outputs),
        "accuracy, parsing (failure = wrong)": (parsed == labels).float().mean().item(),
        "accuracy among parsed": among(parsed[ok] == labels[ok]),
        "parsed as positive": among(parsed[ok] == positive),
        "accuracy, scoring": (scores.argmax(1) == labels).float().mean().item(),
        "generation, texts/s": len(prompts) / seconds,
    }
    return row, outputs


def summarize_in_context(study: pd.DataFrame) -> dict[str, float]:
    """The numbers a reader asks of an :func:`in_context_study` table, by name.

    Returns:
        ``zero`` (raw accuracy at k = 0); ``k_max`` (the largest k) and, over its draws, ``kmax_raw``
        and ``kmax_cal`` (means), ``kmax_min`` and ``kmax_max`` (raw); ``best_shot`` (the best
        per-k mean raw accuracy of any k > 0) and ``shot_means_range`` (max - min of those means);
        ``max_spread`` (the widest max - min between the draws of one k); ``tokens_zero`` and
        ``tokens_kmax`` (prompt tokens); ``speed_one`` and ``speed_kmax`` (texts/s at k = 1 and
        k_max, NaN where absent); and the worst draw of any k > 0: ``worst_k``,
        ``worst_positive`` (its positive demonstrations), ``worst_raw``, ``worst_cal``,
        ``worst_answers_positive``.

    Raises:
        ValueError: the table has no k = 0 row or no k > 0 row.
    """
    zero, shots = study[study["k"] == 0], study[study["k"] > 0]
    if zero.empty or shots.empty:
        raise ValueError("the study needs k = 0 and some k > 0: include both in in_context_study's k_shots")
    k_max = int(shots["k"].max())
    by_k, top = shots.groupby("k"), shots[shots["k"] == k_max]
    means, speeds = by_k["raw"].mean(), by_k["texts/s"].mean()
    worst = shots.loc[shots["raw"].idxmin()]
    return {
        "zero": float(zero["raw"].mean()),
        "k_max": k_max,
        "kmax_raw": float(top["raw"].mean()),
        "kmax_cal": float(top["calibrated"].mean()),
        "kmax_min": float(top["raw"].min()),
        "kmax_max": float(top["raw"].max()),
        "best_shot": float(means.max()),
        "shot_means_range": float(means.max() - means.min()),
        "max_spread": float((by_k["raw"].max() - by_k["raw"].min()).max()),
        "tokens_zero": float(zero["prompt tokens"].mean()),
        "tokens_kmax": float(top["prompt tokens"].mean()),
        "speed_one": float(speeds.get(1, float("nan"))),
        "speed_kmax": float(speeds[k_max]),
        "worst_k": int(worst["k"]),
        "worst_positive": int(worst["positive demos"]),
        "worst_raw": float(worst["raw"]),
        "worst_cal": float(worst["calibrated"]),
        "worst_answers_positive": float(worst["answers positive"]),
    }
