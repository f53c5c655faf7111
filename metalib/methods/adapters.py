"""Parameter-efficient fine-tuning: the ``peft`` library's adapters, BitFit, and what they cost.

Chapter 4 compares ways of training a few parameters of a frozen pretrained model. The adapters
themselves are peft's (LoRA, IA3, prompt tuning, prefix tuning); this module builds their configs
for a BERT-style sequence classifier (:func:`peft_config`), adds the one method peft does not have,
BitFit (:func:`bitfit`), counts what is trained (:func:`trainable_parameters`), measures the memory
training needs (:func:`training_memory`), builds causal-LM examples whose loss covers only the
answer (:func:`answer_only_batch`) and trains a causal LM on them (:func:`train_answer_only`).

The classifier head must be saved with the adapter: it is trained from scratch, so an adapter
without it reloads onto a *random* head (peft issues #310, #577, #876). With ``task_type="SEQ_CLS"``
peft adds ``classifier`` and ``score`` to ``modules_to_save`` itself; :func:`peft_config` names the
head explicitly so that models whose head has another name are covered too.

Example:
    >>> from metalib import zoo                                                    # doctest: +SKIP
    >>> from peft import get_peft_model                                            # doctest: +SKIP
    >>> model, tokenizer = zoo.load_encoder("minilm-l6", num_labels=2)             # doctest: +SKIP
    >>> model = get_peft_model(model, peft_config(AdapterConfig("lora", rank=8)))  # doctest: +SKIP
    >>> trainable_parameters(model)                                                # doctest: +SKIP

References:
    Hu et al. 2022, "LoRA: Low-rank adaptation of large language models".
    Liu et al. 2022, "Few-shot parameter-efficient fine-tuning is better and cheaper than in-context
    learning" (IA3).
    Lester et al. 2021, "The power of scale for parameter-efficient prompt tuning".
    Li and Liang 2021, "Prefix-tuning: optimizing continuous prompts for generation".
    Ben Zaken et al. 2022, "BitFit: simple parameter-efficient fine-tuning for transformer-based masked
    language-models".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import torch

from metalib.train import TrainConfig, Trainer, make_loader

if TYPE_CHECKING:
    from peft import PeftConfig
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "AdapterConfig",
    "METHODS",
    "TARGETS",
    "ParameterCount",
    "answer_only_batch",
    "bitfit",
    "peft_config",
    "train_answer_only",
    "trainable_parameters",
    "training_memory",
]

METHODS = ("lora", "ia3", "prompt", "prefix")
"""The peft methods :func:`peft_config` builds."""

TARGETS = {
    "query_value": ["query", "value"],
    "attention": ["query", "key", "value", "attention.output.dense"],
    "all_linear": ["query", "key", "value", "dense"],
}
"""Names of BERT's linear layers an adapter can wrap. ``dense`` matches the attention output, the
feed-forward layers (``intermediate.dense``, ``output.dense``) and the pooler."""


@dataclass(frozen=True)
class AdapterConfig:
    """Which peft adapter to put on a BERT-style sequence classifier.

    Args:
        method: ``"lora"``, ``"ia3"``, ``"prompt"`` (prompt tuning) or ``"prefix"`` (prefix tuning).
        rank: LoRA's rank ``r``: a wrapped ``d_out × d_in`` weight gets ``r (d_in + d_out)`` trained numbers.
        alpha: LoRA's scale numerator; the update is ``(alpha / r) B A`` (default ``2 r``).
        dropout: LoRA dropout on the adapter's input.
        target: the layers LoRA and IA3 wrap, a key of :data:`TARGETS`.
        virtual_tokens: prompt and prefix tuning's number of learned vectors.
        head: the classifier head's module name, trained and saved with the adapter.
    """

    method: str = "lora"
    rank: int = 8
    alpha: float | None = None
    dropout: float = 0.0
    target: str = "query_value"
    virtual_tokens: int = 20
    head: str | None = "classifier"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"AdapterConfig.method={self.method!r}: choose one of {METHODS}")
        if self.rank < 1:
            raise ValueError(f"AdapterConfig.rank must be >= 1, got {self.rank}")
        if self.target not in TARGETS:
            raise ValueError(f"AdapterConfig.target={self.target!r}: choose one of {tuple(TARGETS)}")
        if self.virtual_tokens < 1:
            raise ValueError(f"AdapterConfig.virtual_tokens must be >= 1, got {self.virtual_tokens}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"AdapterConfig.dropout must be in [0, 1), got {self.dropout}")


def peft_config(config: AdapterConfig, task_type: str = "SEQ_CLS") -> PeftConfig:
    """The peft config for ``config``, with the head in ``modules_to_save``.

    ``modules_to_save`` makes peft keep a trainable copy of the head and write it into the adapter
    file, so ``peft.PeftModel.from_pretrained`` restores the trained head rather than the base
    model's random one. ``task_type`` picks peft's wrapper (``"SEQ_CLS"``, ``"CAUSAL_LM"``). IA3 wraps
    BERT's keys, values and each layer's second feed-forward matrix (whose *input* it scales); LoRA
    wraps the layers of :data:`TARGETS` ``[config.target]``.
    """
    from peft import IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig

    save = [config.head] if config.head else None
    targets = TARGETS[config.target]
    if config.method == "lora":
        return LoraConfig(
            task_type=task_type,
            r=config.rank,
            lora_alpha=config.alpha if config.alpha is not None else 2 * config.rank,
            lora_dropout=config.dropout,
            target_modules=targets,
            modules_to_save=save,
        )
    if config.method == "ia3":
        # one learned scale per channel: of the keys, the values and the feed-forward's hidden units
        # (the input of each layer's second feed-forward matrix, BERT's ``layer.N.output.dense``)
        return IA3Config(
            task_type=task_type,
            target_modules=r".*layer\.\d+\.(attention\.self\.(key|value)|output\.dense)",
            feedforward_modules=r".*layer\.\d+\.output\.dense",
            modules_to_save=save,
        )
    cls = PromptTuningConfig if config.method == "prompt" else PrefixTuningConfig
    return cls(task_type=task_type, num_virtual_tokens=config.virtual_tokens, modules_to_save=save)


def bitfit(model: torch.nn.Module, head: str | None = "classifier") -> int:
    """BitFit: freeze every weight except the biases (and the head's weights); returns the trainable count.

    Ben Zaken et al. (2022) fine-tune only the bias terms of BERT (about 0.1% of its parameters)
    and a task head. Works in place on any ``torch.nn.Module``; parameters whose name ends in
    ``bias`` or starts with ``head + "."`` stay trainable.
    """
    trainable = 0
    for name, parameter in model.named_parameters():
        keep = name.endswith("bias") or (head is not None and name.startswith(head + "."))
        parameter.requires_grad_(keep)
        trainable += parameter.numel() if keep else 0
    if trainable == 0:
        raise ValueError("bitfit found no biases and no head: nothing would train")
    return trainable


class ParameterCount(NamedTuple):
    """Trainable and total parameters of a model; ``percent = 100 trainable / total``."""

    trainable: int
    total: int

    @property
    def percent(self) -> float:
        """Trainable share of all parameters, in percent."""
        return 100 * self.trainable / self.total


def trainable_parameters(model: torch.nn.Module) -> ParameterCount:
    """Count trainable and all parameters (each tensor once, however often it is shared).

    For a peft model the total includes the adapter and the saved copy of the head, as peft's
    ``print_trainable_parameters`` does.
    """
    seen: dict[int, torch.nn.Parameter] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return ParameterCount(trainable, total)


def training_memory(model: torch.nn.Module, optimizer_states: int = 2) -> int:
    """Bytes of training *state*: all weights, plus a gradient and ``optimizer_states`` moments
    (AdamW: 2) for every trainable weight. Activations are not included.

    This is the part of training memory that parameter-efficient methods shrink, and it can be
    computed exactly on any device. (On a CPU there is no reliable peak counter for PyTorch's
    allocations: ``tracemalloc`` does not see them and the process's maximum resident size never
    goes down. On CUDA, ``torch.cuda.max_memory_allocated`` measures the true peak, activations
    included.)
    """
    seen = {id(p): p for p in model.parameters()}
    weights = sum(p.numel() * p.element_size() for p in seen.values())
    trained = sum(p.numel() * p.element_size() for p in seen.values() if p.requires_grad)
    return weights + (1 + optimizer_states) * trained


def answer_only_batch(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], answers: Sequence[str]
) -> dict[str, torch.Tensor]:
    """A causal-LM batch in which only the answer tokens are predicted: ``labels`` is -100 (ignored
    by the loss) on the prompt and on padding.

    Each row is ``prompt + answer`` (answer tokenised on its own, no special tokens, then
    ``eos_token`` if the tokenizer has one), right-padded with ``pad_token`` (or ``eos_token``).

    Shapes: ``input_ids``, ``attention_mask``, ``labels``: ``(B, T)`` int64, ``T`` the longest row.
    """
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("the tokenizer has neither a pad_token nor an eos_token to pad with")
    rows = []
    for prompt, answer in zip(prompts, answers, strict=True):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        answer_ids += [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
        rows.append((prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids))
    length = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), length), pad, dtype=torch.long)  # (B, T)
    labels = torch.full((len(rows), length), -100, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(rows), length), dtype=torch.long)  # (B, T)
    for i, (ids, target) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(ids)] = torch.tensor(target)
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def train_answer_only(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    answers: Sequence[str],
    config: TrainConfig,
    *,
    batch_size: int = 8,
    seed: int = 0,
) -> Trainer:
    """Train a causal LM (e.g. with a LoRA adapter) to continue each prompt with its answer.

    Batches of :func:`answer_only_batch` in a ``seed``-ed order go through
    :class:`metalib.train.Trainer` with ``config``: the loss is the cross-entropy of the answer
    tokens only. Returns the trainer (``trainer.history.steps`` holds the loss curve).
    """
    if len(prompts) != len(answers) or not prompts:
        raise ValueError(
            f"need one answer per prompt and at least one pair, got {len(prompts)}, {len(answers)}"
        )
    pairs = list(zip(prompts, answers, strict=True))

    def collate(rows: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        return answer_only_batch(tokenizer, [p for p, _ in rows], [a for _, a in rows])

    loader = make_loader(pairs, batch_size, shuffle=True, seed=seed, collate_fn=collate)
    trainer = Trainer(model, config, metrics={})
    trainer.fit(loader)
    return trainer
