"""Transfer learning: tokenised datasets, nested few-example subsets, learning curves, a multi-task model.

The pieces of the transfer-learning chapter, each usable alone with :class:`metalib.train.Trainer`:
:class:`TokenizedTexts` and :func:`pad_collator` feed a classifier with dynamically padded batches;
:func:`stratified_subset` draws the training sets of a learning curve, :func:`learning_curve`,
:func:`summarize_curve` and :func:`plot_learning_curves` run, summarise and draw it across seeds;
:class:`MeanPoolClassifier` fine-tunes the probe's own model (probe-initialised: LP-FT), with one
head, or shares the encoder between a main task and auxiliary tasks, one head each.

Example:
    >>> from metalib import zoo                                                  # doctest: +SKIP
    >>> model, tokenizer = zoo.load_encoder("minilm-l6", num_labels=2)           # doctest: +SKIP
    >>> train = TokenizedTexts(tokenizer, texts, labels, max_length=64)          # doctest: +SKIP
    >>> loader = make_loader(train, 32, shuffle=True, collate_fn=pad_collator(tokenizer))  # doctest: +SKIP

References:
    Howard and Ruder 2018, "Universal language model fine-tuning for text classification".
    Caruana 1997, "Multitask learning".
    Kumar et al. 2022, "Fine-tuning can distort pretrained features and underperform out-of-distribution".
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from transformers.modeling_outputs import SequenceClassifierOutput

from metalib import runtime
from metalib.embeddings import mean_pool
from metalib.evaluate import mean_estimate
from metalib.train import TrainConfig, Trainer, make_loader

if TYPE_CHECKING:
    import pandas as pd
    from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "linear_probe",
    "steps_for",
    "MeanPoolClassifier",
    "fine_tune",
    "predict_logits",
    "predict_text_logits",
    "MeanPoolOutput",
    "TokenizedTexts",
    "learning_curve",
    "length_quantile",
    "pad_collator",
    "plot_interval_curves",
    "plot_learning_curves",
    "stratified_subset",
    "summarize_curve",
]


class TokenizedTexts(Dataset):
    """Texts tokenised once (one batched call, truncated to ``max_length``, not padded), as a
    map-style dataset of dicts for :func:`pad_collator`.

    Items: ``input_ids`` and ``attention_mask`` (lists of ints), ``token_type_ids`` if the tokenizer
    returns them, ``labels`` (int) if ``labels`` is given, ``task`` (int) if ``tasks`` is given (for
    a multi-task :class:`MeanPoolClassifier`; combine tasks with ``torch.utils.data.ConcatDataset``).

    Args:
        tokenizer: a Hugging Face tokenizer.
        texts: one string per row.
        labels: one int per row, or None (unlabelled, e.g. for ``Trainer.predict``).
        max_length: tokens kept per text, special tokens included (see :func:`length_quantile`).
        tasks: one task index per row, or None.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        texts: Sequence[str],
        labels: Sequence[int] | None = None,
        max_length: int = 64,
        tasks: Sequence[int] | None = None,
    ) -> None:
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        for name, column in (("labels", labels), ("tasks", tasks)):
            if column is not None and len(column) != len(texts):
                raise ValueError(f"{len(texts)} texts but {len(column)} {name}")
        encoded = tokenizer(list(texts), truncation=True, max_length=max_length) if len(texts) else {}
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        self.rows: list[dict[str, Any]] = []
        for i in range(len(texts)):
            row = {k: encoded[k][i] for k in keys}
            if labels is not None:
                row["labels"] = int(labels[i])
            if tasks is not None:
                row["task"] = int(tasks[i])
            self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]

    def lengths(self) -> np.ndarray:
        """Tokens per row after truncation, shape ``(N,)``."""
        return np.array([len(row["input_ids"]) for row in self.rows], dtype=np.int64)


def pad_collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
    """transformers' ``DataCollatorWithPadding``: pads each batch to its longest row (dynamic padding,
    cheaper than padding every row to ``max_length``) and returns tensors. Fields it does not pad
    (``labels``, ``task``) become int64 tensors of shape ``(B,)``."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer, return_tensors="pt")


def steps_for(n: int, batch_size: int, epochs: int, min_steps: int = 0) -> int:
    """Optimizer steps for ``epochs`` passes over ``n`` examples, at least ``min_steps``.

    Tiny training sets need more passes than large ones: with 16 examples one epoch is one step.
    A floor on the number of steps (rather than on epochs) gives every size a similar number of
    updates when data is scarce.
    """
    return max(min_steps, epochs * -(-n // batch_size))


def linear_probe(
    train_x: np.ndarray,
    train_y: Sequence[int],
    val_x: np.ndarray,
    val_y: Sequence[int],
    cs: Sequence[float] = (0.1, 1.0, 10.0, 100.0),
):
    """Logistic regression on frozen features, its inverse regularisation ``C`` chosen on validation.

    Shapes: ``train_x`` ``(N, H)``, ``val_x`` ``(M, H)``. Fits scikit-learn's ``LogisticRegression``
    (L-BFGS, L2) once per ``C`` in ``cs`` and returns the fitted model with the best validation
    accuracy (ties: the smaller ``C``, i.e. the stronger regularisation). Unit-norm features (as
    :func:`metalib.embeddings.embed_texts` returns) need a larger ``C`` than the default 1.
    """
    from sklearn.linear_model import LogisticRegression

    best, best_score = None, -1.0
    for c in cs:
        model = LogisticRegression(C=c, max_iter=2000).fit(train_x, train_y)
        score = model.score(val_x, val_y)
        if score > best_score:
            best, best_score = model, score
    return best


def fine_tune(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    train: tuple[Sequence[str], Sequence[int]],
    val: tuple[Sequence[str], Sequence[int]] | None,
    config: TrainConfig,
    *,
    batch_size: int = 16,
    max_length: int = 64,
    seed: int = 0,
    forward: Callable | None = None,
    group_by_length: bool = False,
    tasks: Sequence[int] | None = None,
) -> Trainer:
    """Fine-tune a sequence classifier on ``train = (texts, labels)`` with :class:`metalib.train.Trainer`.

    Batches are padded dynamically (:func:`pad_collator`) and drawn in a ``seed``-ed order;
    ``val`` (or None) drives evaluation, early stopping and the restored best weights as set in
    ``config``. ``group_by_length`` batches texts of similar length (see
    :class:`metalib.train.ResumableSampler`): MiniLM fine-tunes at 37 instead of 24 snippets/s on
    2 CPU cores. ``tasks`` (one task index per training row, or None) goes into the batches as
    ``task``, for a multi-task :class:`MeanPoolClassifier`; ``val`` is then the main task's (task 0).
    Returns the trainer (``trainer.history``, ``trainer.unwrapped_model``).
    """
    collate = pad_collator(tokenizer)
    train_set = TokenizedTexts(tokenizer, *train, max_length=max_length, tasks=tasks)
    lengths = train_set.lengths().tolist() if group_by_length else None
    loader = make_loader(train_set, batch_size, shuffle=True, seed=seed, collate_fn=collate, lengths=lengths)
    val_loader = None
    if val is not None:
        val_set = TokenizedTexts(tokenizer, *val, max_length=max_length)
        val_loader = make_loader(val_set, 128, collate_fn=collate)
    trainer = Trainer(model, config, **({"forward": forward} if forward else {}))
    trainer.fit(loader, val_loader)
    return trainer


def predict_logits(
    trainer: Trainer, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int = 64
) -> torch.Tensor:
    """Logits ``(N, C)`` of the trainer's model for ``texts``: :func:`predict_text_logits` of
    ``trainer.unwrapped_model``."""
    return predict_text_logits(trainer.unwrapped_model, tokenizer, texts, max_length)


@torch.no_grad()
def predict_text_logits(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int = 64,
    batch_size: int = 128,
) -> torch.Tensor:
    """Logits ``(N, C)`` of a sequence classifier for ``texts``, in input order, as a float32 CPU tensor.

    No :class:`~metalib.train.Trainer` needed: the model runs in eval mode on its own device (the
    mode it was in is restored), texts sorted by length in batches of ``batch_size`` so that
    batches pad little.
    """
    data = TokenizedTexts(tokenizer, texts, max_length=max_length)
    order = np.argsort(data.lengths(), kind="stable")
    collate = pad_collator(tokenizer)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks = []
    for start in range(0, len(order), batch_size):
        batch = collate([data[i] for i in order[start : start + batch_size].tolist()])
        batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        with runtime.autocast(device):
            chunks.append(model(**batch).logits.float().cpu())
    model.train(was_training)
    if not chunks:
        return torch.empty(0, 0)
    logits = torch.cat(chunks)
    out = torch.empty_like(logits)
    out[torch.from_numpy(order)] = logits
    return out


def length_quantile(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], q: float = 0.99) -> int:
    """The smallest token length ``L`` such that at least a fraction ``q`` of ``texts`` has at most
    ``L`` tokens (special tokens included, no truncation): a ``max_length`` chosen from the data."""
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    if len(texts) == 0:
        raise ValueError("length_quantile of no texts is undefined")
    lengths = [len(ids) for ids in tokenizer(list(texts))["input_ids"]]
    return int(np.quantile(lengths, q, method="inverted_cdf"))


def stratified_subset(labels: Sequence[int] | np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Indices of ``n`` rows whose class proportions follow ``labels``; nested across ``n``.

    The rows come in one seeded order, and the subset of size ``n`` is its first ``n`` entries, so
    for one seed the 16-row subset is inside the 64-row one, which is inside the 256-row one. Points
    of a learning curve then differ only by the rows added, not by a fresh draw of every row as well:
    the curve is smoother and the gain from more data is measured with less variance (common random
    numbers). Across seeds the subsets are independent draws.

    Order: each class's rows are shuffled with ``numpy.random.default_rng(seed)``; the first
    ``n_classes`` positions take one row of every class (largest class first), then each position
    goes to the class furthest below its share (``position * share - taken``; ties to the larger
    class). So for ``n >= n_classes`` every class has at least one row, and each class's count stays
    within about one row of ``n * share`` (measured for shares 0.70 / 0.25 / 0.05 over 12,000 rows: at
    most 1.1 rows off, over every prefix). Ordering all 12,000 rows takes about 0.1 s.

    Args:
        labels: class of every row, shape ``(N,)``.
        n: subset size; ``None`` or ``n >= N``: all ``N`` indices, in the seeded order.
        seed: draw; the same seed always gives the same order.

    Returns:
        int64 indices into ``labels``, shape ``(min(n, N),)``, in the seeded order (not sorted).
    """
    labels = np.asarray(labels)
    total = len(labels)
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0 or None, got {n}")
    size = total if n is None else min(n, total)
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    by_size = np.argsort(-counts, kind="stable")  # class positions, largest first
    rng = np.random.default_rng(seed)
    members = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    share = counts / total
    taken = np.zeros(len(classes), dtype=np.int64)
    order = np.empty(size, dtype=np.int64)
    for k in range(size):
        if k < len(classes):
            c = by_size[k]
        else:
            deficit = (k + 1) * share - taken
            deficit[taken >= counts] = -np.inf  # exhausted classes
            c = by_size[np.argmax(deficit[by_size])]  # argmax takes the first: the larger class on ties
        order[k] = members[c][taken[c]]
        taken[c] += 1
    return order


def learning_curve(
    run: Callable[[int, int], float], sizes: Sequence[int], seeds: Sequence[int], progress: bool = True
) -> pd.DataFrame:
    """Call ``run(n, seed)`` (returning a test accuracy) for every training size and seed.

    Returns:
        One row per call, columns ``n``, ``seed``, ``accuracy``, in the order sizes × seeds.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    rows = []
    pairs = list(itertools.product(sizes, seeds))
    for n, seed in tqdm(pairs, desc="learning curve", disable=not progress):
        rows.append({"n": int(n), "seed": int(seed), "accuracy": float(run(n, seed))})
    return pd.DataFrame(rows, columns=["n", "seed", "accuracy"])


def summarize_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy per training size with a Student-t 95% interval across seeds
    (:func:`metalib.evaluate.mean_estimate`; one seed gives a zero-width interval).

    Returns:
        Indexed by ``n`` (ascending), columns ``mean``, ``low``, ``high``, ``seeds``.
    """
    import pandas as pd

    rows = {}
    for n, group in curve.groupby("n", sort=True):
        est = mean_estimate(group["accuracy"].tolist())
        rows[n] = {"mean": est.mean, "low": est.low, "high": est.high, "seeds": est.n}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "low", "high", "seeds"])
    frame.index.name = "n"
    return frame


def plot_learning_curves(curves: dict[str, pd.DataFrame], ax=None, baseline: float | None = None):
    """Accuracy against training size (log scale), one line per method with its shaded 95% CI.

    Args:
        curves: method name → :func:`learning_curve` output.
        ax: a matplotlib axes (default: a new figure).
        baseline: draw a dashed horizontal line at this accuracy (e.g. the majority class rate).

    Returns:
        The matplotlib axes.
    """
    return plot_interval_curves(
        {name: summarize_curve(curve) for name, curve in curves.items()}, ax, baseline
    )


def plot_interval_curves(
    summaries: dict[str, pd.DataFrame],
    ax=None,
    baseline: float | None = None,
    xlabel: str = "training examples (log scale)",
):
    """One line per name with its shaded interval: ``summaries`` maps a name to a frame indexed by
    the number of examples with columns ``mean``, ``low``, ``high`` (as :func:`summarize_curve`
    returns). Log-scaled x axis; ``baseline`` adds a dashed line. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for i, (name, summary) in enumerate(summaries.items()):
        summary = summary.sort_index()
        n = summary.index.to_numpy()
        ax.plot(n, summary["mean"], "o-", color=f"C{i}", label=name)
        ax.fill_between(n, summary["low"], summary["high"], color=f"C{i}", alpha=0.2, linewidth=0)
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", label=f"majority class ({baseline:.3f})")
    ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel="test accuracy")
    ax.legend()
    return ax


def _pooled_encoding(
    encoder: PreTrainedModel,
    input_ids: torch.Tensor | None,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None = None,
) -> torch.Tensor:
    """The encoder's mean-pooled last hidden state (B, H) of a padded batch (B, T): from token ids,
    or from word embeddings ``inputs_embeds`` (B, T, H) instead (e.g. perturbed ones, for FGM)."""
    kwargs = {"attention_mask": attention_mask}
    if inputs_embeds is not None:
        kwargs["inputs_embeds"] = inputs_embeds
    else:
        kwargs["input_ids"] = input_ids
    if token_type_ids is not None:
        kwargs["token_type_ids"] = token_type_ids
    hidden = encoder(**kwargs).last_hidden_state  # (B, V + T, H): V > 0 virtual tokens under prompt tuning
    virtual = hidden.shape[1] - attention_mask.shape[1]
    if virtual > 0:  # peft prepends learned prompt vectors: they count as real tokens
        attention_mask = torch.cat([attention_mask.new_ones(len(attention_mask), virtual), attention_mask], 1)
    return mean_pool(hidden, attention_mask)


@dataclass
class MeanPoolOutput(SequenceClassifierOutput):
    """:class:`MeanPoolClassifier`'s output: ``loss``, ``logits`` (B, num_labels[0]) of the main task,
    and, for a model of several tasks, ``task_logits`` (B, max(num_labels)): each row's own head, padded."""

    task_logits: torch.Tensor | None = None


class MeanPoolClassifier(torch.nn.Module):
    """An encoder, mean-pooled and (optionally) scaled to unit length, then one linear head per task.

    With one task this is exactly the linear probe's model — :func:`metalib.embeddings.embed_texts`
    features and a linear layer — with the encoder's weights trainable too.
    :meth:`init_head_from_probe` copies a fitted probe into the head, so fine-tuning starts where the
    probe ended: LP-FT (Kumar et al. 2022, "Fine-tuning can distort pretrained features"). A random
    head sends large, random gradients into the encoder during the first steps; a probe-initialised
    one does not.

    Several tasks share the encoder (hard parameter sharing): ``num_labels=(2, 5)`` adds an auxiliary
    head of 5 classes, and training rows name their task in a ``task`` field. Task 0 is the main task:
    ``logits`` are its head's (``head``), for every row, so evaluation, ``Trainer.predict`` and
    accuracy work as for a single-task model; rows of other tasks only change the encoder and their
    own head (in ``aux_heads``). Heads have different numbers of classes: ``task_logits`` puts
    each row's own head output in a ``(B, max(num_labels))`` tensor whose extra columns hold the most
    negative float, so their softmax probability is exactly 0 and one cross-entropy call serves every
    task.

    Args:
        encoder: a bare transformers encoder (e.g. ``zoo.load_encoder(name)`` with
            ``num_labels=None``) returning ``last_hidden_state`` (B, T, H).
        num_labels: classes C of the one task, or classes per task, main task first.
        normalize: scale the pooled vector to unit length (as sentence-transformers models and
            :func:`metalib.embeddings.embed_texts` do).
        dropout: on the pooled vector, before the heads.
        task_weights: loss weight per task (default 1.0 each).
    """

    def __init__(
        self,
        encoder: PreTrainedModel,
        num_labels: int | Sequence[int] = 2,
        normalize: bool = True,
        dropout: float = 0.0,
        task_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        sizes = (num_labels,) if isinstance(num_labels, int) else tuple(int(k) for k in num_labels)
        if not sizes or min(sizes) < 2:
            raise ValueError(f"num_labels must give every task >= 2 classes, got {num_labels}")
        weights = [1.0] * len(sizes) if task_weights is None else list(task_weights)
        if len(weights) != len(sizes):
            raise ValueError(f"{len(sizes)} tasks but {len(weights)} task_weights")
        self.encoder = encoder
        self.num_labels = sizes
        self.normalize = normalize
        hidden = encoder.config.hidden_size
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(hidden, sizes[0])
        self.aux_heads = torch.nn.ModuleList(torch.nn.Linear(hidden, k) for k in sizes[1:])
        self.register_buffer("task_weights", torch.tensor(weights, dtype=torch.float32), persistent=False)

    @property
    def heads(self) -> tuple[torch.nn.Linear, ...]:
        """The heads of all tasks, ``(head, *aux_heads)``, main task first."""
        return (self.head, *self.aux_heads)

    def get_input_embeddings(self) -> torch.nn.Module:
        """The encoder's word embeddings."""
        return self.encoder.get_input_embeddings()

    @torch.no_grad()
    def init_head_from_probe(self, probe: Any) -> MeanPoolClassifier:
        """Copy a fitted scikit-learn linear classifier (``coef_`` (1 or C, H), ``intercept_``) into the
        main head.

        A binary probe has one weight row ``w`` (class 1 against class 0); the head gets rows ``0`` and
        ``w``, which give the same softmax probabilities. Returns ``self``.
        """
        coef = torch.as_tensor(np.asarray(probe.coef_), dtype=self.head.weight.dtype)
        bias = torch.as_tensor(np.asarray(probe.intercept_), dtype=self.head.bias.dtype)
        num_labels, hidden = self.head.weight.shape
        if coef.shape[0] == 1 and num_labels == 2:
            coef, bias = torch.cat([torch.zeros_like(coef), coef]), torch.cat([torch.zeros_like(bias), bias])
        if tuple(coef.shape) != (num_labels, hidden):
            raise ValueError(
                f"probe weights of shape {tuple(coef.shape)} do not fit a head of {(num_labels, hidden)}"
            )
        self.head.weight.copy_(coef)
        self.head.bias.copy_(bias)
        return self

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        task: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> MeanPoolOutput:
        """Shapes: ``input_ids``, ``attention_mask``, ``token_type_ids`` (B, T); ``task``, ``labels``
        (B,) int, each label in its row's task (``task=None``: every row is task 0). Instead of
        ``input_ids``, ``inputs_embeds`` (B, T, H) may give the word embeddings (as
        :func:`metalib.adversarial.fgm_forward` does); ``attention_mask=None`` means no padding.

        Returns:
            A :class:`MeanPoolOutput` with ``logits`` (B, num_labels[0]) from the main head and, given
            ``labels``, ``loss``. With one task the loss is the mean cross-entropy (times the task's
            weight); with several it is the mean over rows of ``task_weights[task_i]`` times row
            ``i``'s cross-entropy under its own task's head (both give the same gradients when every
            row is task 0), and ``task_logits`` (B, max(num_labels)) holds each row's own head, padded.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        reference = input_ids if input_ids is not None else inputs_embeds
        if attention_mask is None:
            attention_mask = torch.ones(reference.shape[:2], dtype=torch.long, device=reference.device)
        pooled = _pooled_encoding(self.encoder, input_ids, attention_mask, token_type_ids, inputs_embeds)
        if self.normalize:
            pooled = F.normalize(pooled, dim=-1)
        pooled = self.dropout(pooled)  # (B, H)
        last = len(self.num_labels) - 1
        if task is not None and task.numel() and (task.min() < 0 or task.max() > last):
            raise ValueError(f"task ids must be in 0..{last}, got {task.unique().tolist()}")
        logits = self.head(pooled)  # (B, C0)
        if not self.aux_heads:
            loss = None if labels is None else F.cross_entropy(logits.float(), labels) * self.task_weights[0]
            return MeanPoolOutput(loss=loss, logits=logits)
        if task is None:
            task = torch.zeros(len(pooled), dtype=torch.long, device=pooled.device)
        task_logits = logits.new_full((len(pooled), max(self.num_labels)), torch.finfo(logits.dtype).min)
        for t, head in enumerate(self.heads):
            rows = task == t
            if rows.any():  # a head with no row in the batch stays out of the loss: no gradient at all
                own = logits[rows] if t == 0 else head(pooled[rows])
                task_logits[rows, : self.num_labels[t]] = own
        loss = None
        if labels is not None:
            sizes = torch.tensor(self.num_labels, device=labels.device)[task]  # (B,)
            if labels.numel() and ((labels < 0) | (labels >= sizes)).any():
                raise ValueError("a label is outside its task's classes (num_labels per task)")
            per_row = F.cross_entropy(task_logits.float(), labels, reduction="none")  # (B,)
            loss = (self.task_weights[task] * per_row).mean()
        return MeanPoolOutput(loss=loss, logits=logits, task_logits=task_logits)
