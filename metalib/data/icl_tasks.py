"""Text classification tasks for learning in context (MetaICL): training tasks and disjoint test tasks.

A :class:`TextTask` is a set of labelled texts with an answer word per class, the form in which a
language model sees a task in context: ``k`` demonstrations ("Input: text / Output: answer"), then
a query whose answer it must write (:func:`episode_prompt`). :func:`meta_icl_tasks` builds the pool
from the data the book already has:

- **train**: ``ways``-way WordNet supersense tasks (gloss → supersense) over the training classes of
  :func:`~metalib.data.wordnet.class_splits`; part of speech (noun vs verb glosses of those classes);
  review vs plot synopsis on the Rotten Tomatoes training split.
- **test**: ``ways``-way supersense tasks over the test classes; Rotten Tomatoes sentiment (fresh vs
  rotten) on the movie-disjoint test split.

No class of a test task is a class of a training task, and no text of a test task is a text of a
training task (:func:`check_disjoint`, which :func:`meta_icl_tasks` runs before returning).

Example:
    >>> tasks = meta_icl_tasks(seed=0)                                      # doctest: +SKIP
    >>> prompt, answer = episode_prompt(tasks["test"][0], [0, 1, 2, 3], 4)   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metalib.data.sentiment import rotten_tomatoes, rotten_tomatoes_subjectivity
from metalib.data.wordnet import SupersenseData, class_splits, wordnet_supersenses

__all__ = [
    "EpisodePrompts",
    "TextTask",
    "check_disjoint",
    "episode_prompt",
    "episode_prompts",
    "meta_icl_tasks",
    "sample_episode",
    "supersense_tasks",
]


@dataclass(frozen=True)
class TextTask:
    """Labelled texts of one task: ``texts[i]`` has class ``labels[i]``, an index into ``answers``
    (the word a model writes for that class) and ``classes`` (the class's identity across tasks,
    e.g. ``"noun.animal"``, used to keep test classes out of training)."""

    name: str
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    answers: tuple[str, ...]
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"task {self.name!r}: {len(self.texts)} texts but {len(self.labels)} labels")
        if len(self.answers) != len(self.classes) or len(set(self.answers)) < len(self.answers):
            raise ValueError(f"task {self.name!r}: one distinct answer per class, got {self.answers}")
        if len(self.classes) < 2 or set(self.labels) != set(range(len(self.classes))):
            raise ValueError(f"task {self.name!r}: every one of its {len(self.classes)} classes needs texts")

    def __len__(self) -> int:
        return len(self.texts)


def _cut(text: str, max_words: int) -> str:
    words = text.split()
    return " ".join(words[:max_words])


_ANSWERS = {  # supersenses whose second part is not a word a model could answer with
    "adj.all": "adjective",
    "adj.pert": "relational",
    "adj.ppl": "participle",
    "adv.all": "adverb",
    "noun.Tops": "top",
}


def _answer_words(classes: Sequence[str]) -> tuple[str, ...]:
    """``noun.animal`` → ``animal`` (``adv.all`` → ``adverb``); both parts (``noun cognition``)
    where two classes of the task share a word."""
    words = [_ANSWERS.get(name, name.split(".")[-1].lower()) for name in classes]
    return tuple(
        w if words.count(w) == 1 else name.replace(".", " ").lower()
        for w, name in zip(words, classes, strict=True)
    )


def _usable(texts: Sequence[str], exclude: frozenset[str], max_words: int) -> list[str]:
    """``texts`` cut to ``max_words`` words, without those in ``exclude`` (cut texts of test tasks)."""
    return [t for t in (_cut(text, max_words) for text in texts) if t not in exclude]


def _balanced(name: str, rows: dict[str, list[str]], answers: Sequence[str], per_class: int, rng) -> TextTask:
    """A task of at most ``per_class`` texts of every class of ``rows`` (class identity → texts)."""
    texts, labels = [], []
    for label, pool in enumerate(rows.values()):
        picked = rng.choice(len(pool), size=min(per_class, len(pool)), replace=False)
        texts += [pool[i] for i in sorted(picked)]
        labels += [label] * len(picked)
    return TextTask(name, tuple(texts), tuple(labels), tuple(answers), tuple(rows))


def supersense_tasks(
    data: SupersenseData,
    classes: Sequence[str],
    ways: int,
    n_tasks: int,
    per_class: int,
    seed: int,
    *,
    exclude: frozenset[str] = frozenset(),
    max_words: int = 40,
) -> list[TextTask]:
    """``n_tasks`` tasks of ``ways`` supersenses drawn from ``classes`` (gloss → supersense), each
    with at most ``per_class`` glosses per class (none of ``exclude``), from one ``seed``-ed draw."""
    if not 2 <= ways <= len(classes):
        raise ValueError(f"ways={ways}: choose 2 to {len(classes)} (the classes given)")
    rng = np.random.default_rng(seed)
    by_class = {c: _usable([data.glosses[i] for i in data.indices([c])], exclude, max_words) for c in classes}
    tasks = []
    for t in range(n_tasks):
        group = sorted(rng.choice(sorted(classes), size=ways, replace=False).tolist())
        rows = {c: by_class[c] for c in group}
        tasks.append(_balanced(f"supersense {t}", rows, _answer_words(group), per_class, rng))
    return tasks


def meta_icl_tasks(
    seed: int = 0,
    *,
    ways: int = 4,
    n_train_groups: int = 40,
    n_test_groups: int = 10,
    per_class: int = 64,
    max_words: int = 40,
    data: SupersenseData | None = None,
) -> dict[str, list[TextTask]]:
    """The MetaICL task pool: ``{"train": [...], "test": [...]}`` (see the module's text).

    Args:
        seed: the supersense groups and every sample of texts.
        ways: classes per supersense task.
        n_train_groups, n_test_groups: supersense tasks for training and for testing.
        per_class: texts per class and task, at most (fewer where a class has fewer).
        max_words: texts are cut to their first ``max_words`` words (a plot synopsis runs to
            hundreds), so that several demonstrations fit in a prompt.
        data: WordNet supersenses (default: :func:`~metalib.data.wordnet.wordnet_supersenses`).

    Raises:
        ValueError: a test class or text would appear in training (never, with these sources).
    """
    data = data or wordnet_supersenses()
    split = class_splits(seed=0)  # the book's fixed class split, as chapter 6 uses it
    rng = np.random.default_rng(seed)
    sentiment = rotten_tomatoes(seed=0).test
    reviews = {"rt.rotten": [], "rt.fresh": []}
    for text, label in zip(sentiment.texts, sentiment.labels, strict=True):
        reviews[("rt.rotten", "rt.fresh")[label]].append(text)
    reviews = {name: _usable(texts, frozenset(), max_words) for name, texts in reviews.items()}
    test = supersense_tasks(
        data, split["test"], ways, n_test_groups, per_class, seed + 1, max_words=max_words
    )
    test.append(_balanced("movie sentiment", reviews, ("rotten", "fresh"), per_class, rng))
    seen = frozenset(text for task in test for text in task.texts)

    train = supersense_tasks(
        data, split["train"], ways, n_train_groups, per_class, seed, exclude=seen, max_words=max_words
    )
    train_classes = set(split["train"])
    by_pos: dict[str, list[str]] = {"pos.noun": [], "pos.verb": []}
    for gloss, label in zip(data.glosses, data.labels, strict=True):
        if label in train_classes and label.split(".")[0] in ("noun", "verb"):
            by_pos[f"pos.{label.split('.')[0]}"].append(gloss)
    by_pos = {name: _usable(texts, seen, max_words) for name, texts in by_pos.items()}
    train.append(_balanced("part of speech", by_pos, ("noun", "verb"), per_class, rng))
    subjectivity = rotten_tomatoes_subjectivity(seed=0).train
    kinds: dict[str, list[str]] = {"rt.plot": [], "rt.review": []}
    for text, label in zip(subjectivity.texts, subjectivity.labels, strict=True):
        kinds[("rt.plot", "rt.review")[label]].append(text)
    kinds = {name: _usable(texts, seen, max_words) for name, texts in kinds.items()}
    train.append(_balanced("review or plot", kinds, ("plot", "review"), per_class, rng))
    check_disjoint(train, test)
    return {"train": train, "test": test}


def check_disjoint(train: Sequence[TextTask], test: Sequence[TextTask]) -> None:
    """Raise ``ValueError`` naming the first class or text that a test task shares with a training task."""
    train_classes = {c for task in train for c in task.classes}
    train_texts = {t for task in train for t in task.texts}
    for task in test:
        shared = sorted(set(task.classes) & train_classes)
        if shared:
            raise ValueError(f"test task {task.name!r} has training classes: {shared[:3]}")
        texts = [t for t in task.texts if t in train_texts]
        if texts:
            raise ValueError(
                f"test task {task.name!r} has {len(texts)} training texts, e.g. {texts[0][:60]!r}"
            )


def sample_episode(task: TextTask, k: int, rng: np.random.Generator) -> tuple[list[int], int]:
    """``k`` demonstrations and one query of ``task``: distinct row indices drawn uniformly."""
    if not 0 <= k < len(task):
        raise ValueError(f"k={k}: task {task.name!r} has {len(task)} texts (k + 1 are needed)")
    rows = rng.choice(len(task), size=k + 1, replace=False).tolist()
    return rows[:k], rows[k]


def episode_prompt(task: TextTask, demonstrations: Sequence[int], query: int) -> tuple[str, str]:
    """``(prompt, answer)``: each demonstration as ``Input: text`` / ``Output: answer`` (a blank
    line between them), then the query's ``Input:`` line and ``Output:``; the answer has a leading
    space, as the model writes it after ``Output:``."""
    blocks = [f"Input: {task.texts[i]}\nOutput: {task.answers[task.labels[i]]}" for i in demonstrations]
    blocks.append(f"Input: {task.texts[query]}\nOutput:")
    return "\n\n".join(blocks), " " + task.answers[task.labels[query]]


@dataclass(frozen=True)
class EpisodePrompts:
    """Episodes as text: ``prompts[i]`` (its demonstrations, then its query) should continue with
    ``answers[i]``; ``tasks[i]`` is the index of its task, whose answers are the options."""

    prompts: tuple[str, ...]
    answers: tuple[str, ...]
    tasks: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.prompts)


def episode_prompts(tasks: Sequence[TextTask], k: int, n_episodes: int, seed: int) -> EpisodePrompts:
    """``n_episodes`` episodes of ``k`` demonstrations, taking the tasks in turn (episode ``i`` is of
    task ``i % len(tasks)``), each with its own draw of rows from one ``seed``-ed generator. With
    ``k = 0`` a prompt is the query alone: multi-task training without demonstrations."""
    rng = np.random.default_rng(seed)
    prompts, answers, which = [], [], []
    for i in range(n_episodes):
        task = tasks[i % len(tasks)]
        prompt, answer = episode_prompt(task, *sample_episode(task, k, rng))
        prompts.append(prompt)
        answers.append(answer)
        which.append(i % len(tasks))
    return EpisodePrompts(tuple(prompts), tuple(answers), tuple(which))
