"""MetaICL (Min et al. 2022): train a causal language model to learn a task from demonstrations.

Meta-training shows the model many tasks, each episode as ``k`` demonstrations and a query
(:func:`metalib.data.icl_tasks.episode_prompts`), and trains it on the cross-entropy of the query's
answer tokens only (:func:`metalib.methods.adapters.train_answer_only`): the loss rewards whatever
helps to answer the query, and what helps is reading the demonstrations. With ``k = 0`` the same
loop is multi-task training on the queries alone — the mean over tasks of each task's loss, with
no demonstration to learn from.

At test time nothing is trained: :func:`episode_correct` scores each test episode's prompt against
its task's answer words (:func:`metalib.methods.prompting.score_labels`) and records whether the
most likely answer is the right one, so two models (or two ``k``) are compared on the same
episodes, pair by pair.

Example:
    >>> from metalib import data, zoo                                            # doctest: +SKIP
    >>> tasks = data.meta_icl_tasks(seed=0)                                      # doctest: +SKIP
    >>> test = data.episode_prompts(tasks["test"], k=4, n_episodes=200, seed=1)  # doctest: +SKIP
    >>> lm, tokenizer = zoo.load_causal_lm()                                     # doctest: +SKIP
    >>> episode_correct(lm, tokenizer, tasks["test"], test).mean()               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from metalib.data.icl_tasks import EpisodePrompts, TextTask, episode_prompts
from metalib.methods.adapters import train_answer_only
from metalib.methods.prompting import score_labels
from metalib.train import TrainConfig, Trainer

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

__all__ = ["episode_correct", "meta_train"]


def meta_train(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    tasks: Sequence[TextTask],
    config: TrainConfig,
    *,
    k: int,
    n_episodes: int,
    batch_size: int = 8,
    seed: int = 0,
) -> Trainer:
    """Train ``model`` (a causal LM, typically with LoRA adapters) on ``n_episodes`` episodes of
    ``tasks`` with ``k`` demonstrations each, the loss on the query's answer only.

    ``k = 0``: multi-task training without demonstrations. The episodes are drawn with ``seed``,
    which also orders the batches. Returns the trainer (``trainer.history.steps``: the loss curve).
    """
    episodes = episode_prompts(tasks, k, n_episodes, seed)
    return train_answer_only(
        model, tokenizer, episodes.prompts, episodes.answers, config, batch_size=batch_size, seed=seed
    )


def episode_correct(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    tasks: Sequence[TextTask],
    episodes: EpisodePrompts,
    *,
    batch_size: int = 8,
) -> np.ndarray:
    """Whether ``model`` answers each episode right: shape ``(len(episodes),)``, bool.

    Every prompt is scored against the answer words of its own task (``episodes.tasks[i]`` indexes
    ``tasks``), one :func:`~metalib.methods.prompting.score_labels` call per task; the prediction is
    the most likely answer, uncalibrated. Puts ``model`` in eval mode.
    """
    model.eval()
    correct = np.zeros(len(episodes), dtype=bool)
    which = np.asarray(episodes.tasks)
    for t, task in enumerate(tasks):
        rows = np.flatnonzero(which == t)
        if not len(rows):
            continue
        options = [[" " + answer] for answer in task.answers]  # as the model writes it after "Output:"
        scores = score_labels(
            model, tokenizer, [episodes.prompts[i] for i in rows], options, batch_size=batch_size
        )  # (rows, classes)
        truth = np.array([task.answers.index(episodes.answers[i].strip()) for i in rows])
        correct[rows] = scores.argmax(dim=1).numpy() == truth
    return correct
