"""Datasets and task samplers of the book: plain rows, index arrays and tensors.

- :mod:`metalib.data.sentiment` — Rotten Tomatoes snippets, fresh vs rotten (and review vs plot),
  movie-disjoint splits.
- :mod:`metalib.data.wordnet` — WordNet 3.0 glosses labelled with 45 supersenses, fixed class splits.
- :mod:`metalib.data.episodes` — N-way K-shot episodes over any labelled rows.
- :mod:`metalib.data.icl_tasks` — text tasks with answer words, for learning in context (MetaICL):
  training tasks and test tasks that share no class and no text.
- :mod:`metalib.data.sine` — the sinusoid regression tasks of Finn et al. 2017 (imports torch).

``import metalib.data`` imports none of them; each name below loads its module on first use.
``metalib.data.sine`` is always the module (its function is ``metalib.data.sine.sine``): a
submodule and a re-exported function of the same name cannot share one attribute.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metalib.data.episodes import Episode, EpisodeSampler
    from metalib.data.icl_tasks import (
        TextTask,
        check_disjoint,
        episode_prompt,
        meta_icl_tasks,
        sample_episode,
    )
    from metalib.data.sentiment import (
        SentimentRows,
        SentimentSplits,
        corpus_path,
        leakage_report,
        rotten_tomatoes,
        rotten_tomatoes_subjectivity,
    )
    from metalib.data.sine import SineBatch, SineTasks, sine_evaluation_set
    from metalib.data.wordnet import (
        LEXNAMES,
        SupersenseData,
        class_splits,
        find_wordnet_dir,
        pooled_rows,
        supersense_task,
        wordnet_supersenses,
    )

_EXPORTS: dict[str, str] = {
    "Episode": "episodes",
    "EpisodeSampler": "episodes",
    "EpisodePrompts": "icl_tasks",
    "TextTask": "icl_tasks",
    "check_disjoint": "icl_tasks",
    "episode_prompt": "icl_tasks",
    "episode_prompts": "icl_tasks",
    "meta_icl_tasks": "icl_tasks",
    "sample_episode": "icl_tasks",
    "SentimentRows": "sentiment",
    "SentimentSplits": "sentiment",
    "corpus_path": "sentiment",
    "leakage_report": "sentiment",
    "rotten_tomatoes": "sentiment",
    "rotten_tomatoes_subjectivity": "sentiment",
    "SineBatch": "sine",
    "SineTasks": "sine",
    "sine_evaluation_set": "sine",
    "LEXNAMES": "wordnet",
    "SupersenseData": "wordnet",
    "class_splits": "wordnet",
    "find_wordnet_dir": "wordnet",
    "pooled_rows": "wordnet",
    "supersense_task": "wordnet",
    "wordnet_supersenses": "wordnet",
}

__all__ = [
    "LEXNAMES",
    "Episode",
    "EpisodePrompts",
    "EpisodeSampler",
    "SentimentRows",
    "SentimentSplits",
    "SineBatch",
    "SineTasks",
    "SupersenseData",
    "TextTask",
    "check_disjoint",
    "class_splits",
    "corpus_path",
    "find_wordnet_dir",
    "episode_prompt",
    "episode_prompts",
    "leakage_report",
    "meta_icl_tasks",
    "pooled_rows",
    "rotten_tomatoes",
    "rotten_tomatoes_subjectivity",
    "sample_episode",
    "sine_evaluation_set",
    "supersense_task",
    "wordnet_supersenses",
]


_SUBMODULES = ("episodes", "icl_tasks", "sentiment", "sine", "wordnet")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"metalib.data.{name}")
    if name in _EXPORTS:
        module = importlib.import_module(f"metalib.data.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'metalib.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
