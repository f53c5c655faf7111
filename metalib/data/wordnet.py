"""WordNet 3.0 glosses labelled with their supersense (lexicographer file), for N-way K-shot episodes.

Every WordNet synset sits in one of 45 *lexicographer files* ("supersenses": ``noun.animal``,
``verb.motion``, ...). Predicting the supersense from the gloss is a many-class text task, which makes
it a natural source of few-shot episodes with disjoint meta-train / meta-val / meta-test classes.
Used by the prototypical-network and MAML chapters.

Measured on WordNet 3.0 (Debian ``wordnet-base``): 117,659 synsets; all 45 classes occur; the smallest
is ``noun.motive`` (42 synsets), the largest ``adj.all`` (14,435). Parsing takes under 1 s on
2 CPU cores, so nothing is cached.

References:
    Miller 1995, "WordNet: a lexical database for English".
    Ciaramita and Johnson 2003, "Supersense tagging of unknown nouns in WordNet".
"""

from __future__ import annotations

import io
import os
import sys
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "LEXNAMES",
    "GlossRows",
    "GlossTask",
    "SupersenseData",
    "class_splits",
    "find_wordnet_dir",
    "pooled_rows",
    "supersense_task",
    "wordnet_supersenses",
]

#: The 45 lexicographer file names of WordNet 3.0, indexed by ``lex_filenum`` (lexnames(5WN)).
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change",
    "verb.cognition", "verb.communication", "verb.competition", "verb.consumption", "verb.contact",
    "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social",
    "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip

_POS_FILES = ("noun", "verb", "adj", "adv")
_ENV_VAR = "METALIB_WORDNET_DIR"
_SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/wordnet"),)
_INSTALL_HINT = (
    "Install WordNet 3.0 with `apt-get install wordnet-base` (Debian/Ubuntu, files in /usr/share/wordnet), "
    "or `python -m nltk.downloader wordnet` (online, into nltk_data/corpora/wordnet), "
    f"or point the {_ENV_VAR} environment variable at a folder holding data.noun, data.verb, "
    "data.adj and data.adv."
)


@dataclass(frozen=True)
class SupersenseData:
    """WordNet synsets as parallel columns; row ``i`` of every column describes one synset.

    Attributes:
        synset_ids: ``"<offset>-<ss_type>"`` e.g. ``"02084071-n"``; unique.
        pos: synset type, one of ``n v a s r`` (``s`` = adjective satellite).
        labels: supersense (lexicographer file name), e.g. ``"noun.animal"``.
        glosses: definition plus usage examples, as in WordNet (``'a member of the genus Canis ...'``).
        lemmas: the synset's words, underscores replaced by spaces, adjective markers such as
            ``(p)`` removed.
        source: the folder or zip file that was read.
    """

    synset_ids: tuple[str, ...]
    pos: tuple[str, ...]
    labels: tuple[str, ...]
    glosses: tuple[str, ...]
    lemmas: tuple[tuple[str, ...], ...]
    source: Path

    def __len__(self) -> int:
        return len(self.synset_ids)

    @property
    def class_names(self) -> list[str]:
        """Supersenses that occur, sorted."""
        return sorted(set(self.labels))

    def class_counts(self) -> dict[str, int]:
        """Number of synsets per supersense, sorted by name."""
        return dict(sorted(Counter(self.labels).items()))

    def indices(self, classes: list[str] | tuple[str, ...]) -> np.ndarray:
        """Row indices whose label is in ``classes``, ascending. Shape ``(n,)``, int64."""
        unknown = set(classes) - set(LEXNAMES)
        if unknown:
            raise ValueError(f"unknown supersense(s) {sorted(unknown)}; valid names are in LEXNAMES")
        wanted = set(classes)
        return np.array([i for i, label in enumerate(self.labels) if label in wanted], dtype=np.int64)


def _has_files(folder: Path) -> bool:
    return all((folder / f"data.{name}").is_file() for name in _POS_FILES)


def _zip_has_files(path: Path) -> bool:
    if not path.is_file():
        return False
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    return all(f"wordnet/data.{name}" in names for name in _POS_FILES)


def _nltk_dirs() -> list[Path]:
    """NLTK's data search path (same places as ``nltk.data.path``), without importing nltk."""
    roots = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    roots.append(Path.home() / "nltk_data")
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        roots += [Path(prefix) / sub for sub in ("nltk_data", "share/nltk_data", "lib/nltk_data")]
    roots += [
        Path(p)
        for p in (
            "/usr/share/nltk_data",
            "/usr/local/share/nltk_data",
            "/usr/lib/nltk_data",
            "/usr/local/lib/nltk_data",
        )
    ]
    return [root / "corpora" for root in roots]


def find_wordnet_dir(wordnet_dir: str | os.PathLike[str] | None = None) -> Path:
    """Locate the WordNet 3.0 database files ``data.{noun,verb,adj,adv}``.

    Order: ``wordnet_dir``; the ``METALIB_WORDNET_DIR`` environment variable; ``/usr/share/wordnet``;
    NLTK data folders (``<nltk_data>/corpora/wordnet`` or ``<nltk_data>/corpora/wordnet.zip``).
    An explicit ``wordnet_dir`` or environment variable is authoritative: if it lacks the files, the
    search stops there with an error.

    Returns:
        The folder holding the files, or the path of NLTK's ``wordnet.zip``.

    Raises:
        FileNotFoundError: nothing found; the message says how to install WordNet.
    """
    explicit = [(wordnet_dir, "wordnet_dir"), (os.environ.get(_ENV_VAR) or None, _ENV_VAR)]
    for value, origin in explicit:
        if value is not None:
            folder = Path(value).expanduser()
            if _has_files(folder):
                return folder
            raise FileNotFoundError(
                f"{origin}={str(folder)!r} does not hold data.noun/verb/adj/adv. {_INSTALL_HINT}"
            )
    searched: list[Path] = []
    for folder in list(_SYSTEM_DIRS) + [corpora / "wordnet" for corpora in _nltk_dirs()]:
        searched.append(folder)
        if _has_files(folder):
            return folder
    for corpora in _nltk_dirs():
        searched.append(corpora / "wordnet.zip")
        if _zip_has_files(corpora / "wordnet.zip"):
            return corpora / "wordnet.zip"
    shown = ", ".join(str(p) for p in searched[:6])
    raise FileNotFoundError(f"WordNet 3.0 not found (searched {shown}, ...). {_INSTALL_HINT}")


def _read_lines(source: Path, pos_file: str) -> list[str]:
    if source.suffix == ".zip":
        with zipfile.ZipFile(source) as archive:
            raw = archive.read(f"wordnet/data.{pos_file}")
        return io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8").readlines()
    with open(source / f"data.{pos_file}", encoding="utf-8") as handle:
        return handle.readlines()


def _clean_lemma(word: str) -> str:
    if word.endswith(")") and "(" in word:  # adjective syntactic markers: (a), (p), (ip)
        word = word[: word.rindex("(")]
    return word.replace("_", " ")


def wordnet_supersenses(wordnet_dir: str | os.PathLike[str] | None = None) -> SupersenseData:
    """Parse WordNet 3.0 into synsets labelled with their supersense.

    Args:
        wordnet_dir: folder with ``data.{noun,verb,adj,adv}``; default: searched, see
            :func:`find_wordnet_dir`.

    Returns:
        117,659 rows for WordNet 3.0, 45 classes, sizes 42 (``noun.motive``) to 14,435
        (``adj.all``). Rows follow the files: nouns, verbs, adjectives, adverbs, by offset.

    Raises:
        FileNotFoundError: WordNet not found (with install instructions).
        ValueError: a data line does not parse (names the file and offset).

    Example:
        >>> data = wordnet_supersenses()  # doctest: +SKIP
        >>> data.labels[0], data.glosses[0][:30]  # doctest: +SKIP
        ('noun.Tops', 'that which is perceived or kno')
    """
    source = find_wordnet_dir(wordnet_dir)
    ids: list[str] = []
    pos: list[str] = []
    labels: list[str] = []
    glosses: list[str] = []
    lemmas: list[tuple[str, ...]] = []
    for pos_file in _POS_FILES:
        for line in _read_lines(source, pos_file):
            if line.startswith("  "):  # licence header
                continue
            head, sep, gloss = line.partition(" | ")
            fields = head.split(" ")
            try:
                lex_filenum, word_count = int(fields[1]), int(fields[3], 16)
                words = fields[4 : 4 + 2 * word_count : 2]  # word, lex_id pairs
                if not 0 <= lex_filenum < len(LEXNAMES):
                    raise ValueError(f"lex_filenum {lex_filenum} is not in 0..{len(LEXNAMES) - 1}")
                if not sep or len(words) != word_count:
                    raise ValueError("no gloss or too few words")
                label = LEXNAMES[lex_filenum]
            except (IndexError, ValueError) as err:
                raise ValueError(
                    f"cannot parse line of {source}/data.{pos_file} starting {line[:40]!r}: {err}"
                ) from err
            ids.append(f"{fields[0]}-{fields[2]}")
            pos.append(fields[2])
            labels.append(label)
            glosses.append(gloss.strip())
            lemmas.append(tuple(_clean_lemma(word) for word in words))
    return SupersenseData(tuple(ids), tuple(pos), tuple(labels), tuple(glosses), tuple(lemmas), source)


def pooled_rows(
    data: SupersenseData,
    splits: Mapping[str, Sequence[str]],
    per_class: Sequence[int],
    seed: int = 0,
) -> np.ndarray:
    """Row indices of a sample of every class's glosses: at most ``per_class[s]`` for each class of
    the ``s``-th split, in the order of ``splits`` (each class's rows sorted), all drawn without
    replacement from one ``numpy.random.default_rng(seed)``. Chapter 6 pools its episodes from them.

    Shapes: returns int64 ``(R,)``.
    """
    if len(per_class) != len(splits) or any(n < 1 for n in per_class):
        raise ValueError(f"per_class={tuple(per_class)} needs one positive count per split {list(splits)}")
    rng = np.random.default_rng(seed)
    pool: list[int] = []
    for names, n in zip(splits.values(), per_class, strict=True):
        for name in names:
            rows = data.indices([name])
            pool += sorted(rng.choice(rows, size=min(n, len(rows)), replace=False).tolist())
    return np.asarray(pool, dtype=np.int64)


def class_splits(seed: int = 0, sizes: tuple[int, int, int] = (25, 10, 10)) -> dict[str, list[str]]:
    """Disjoint supersense classes for meta-train / meta-val / meta-test.

    Stratified by part of speech so that each split mixes nouns, verbs and adjectives/adverbs in
    proportion: the 45 classes form three groups (26 noun, 15 verb, 4 adj/adv); each group is shuffled
    with ``numpy.random.default_rng(seed)`` and dealt out so every split gets its proportional share
    (largest remainders). The result depends only on ``seed`` and ``sizes``, not on the data.

    With the defaults (seed 0, 25/10/10) the split is:

    - **train** (14 noun, 9 verb, 2 adj/adv): adj.all, adj.pert, noun.Tops, noun.animal, noun.artifact,
      noun.attribute, noun.cognition, noun.event, noun.food, noun.group, noun.phenomenon, noun.process,
      noun.relation, noun.state, noun.substance, noun.time, verb.change, verb.cognition,
      verb.communication, verb.competition, verb.consumption, verb.contact, verb.creation,
      verb.perception, verb.possession
    - **val** (6 noun, 3 verb, 1 adj/adv): adj.ppl, noun.body, noun.communication, noun.location,
      noun.motive, noun.possession, noun.quantity, verb.body, verb.motion, verb.weather
    - **test** (6 noun, 3 verb, 1 adj/adv): adv.all, noun.act, noun.feeling, noun.object, noun.person,
      noun.plant, noun.shape, verb.emotion, verb.social, verb.stative

    Synsets per split for seed 0: train 68,446 (smallest class noun.Tops, 51), val 15,306
    (noun.motive, 42), test 33,907 (noun.shape, 341).

    Args:
        seed: shuffling seed; 0 gives the documented split.
        sizes: number of (train, val, test) classes; must sum to 45.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, each list sorted.
    """
    if len(sizes) != 3 or any(s < 1 for s in sizes) or sum(sizes) != len(LEXNAMES):
        raise ValueError(f"sizes={sizes} must be three positive class counts summing to {len(LEXNAMES)}")
    groups = [
        sorted(n for n in LEXNAMES if n.startswith("noun.")),
        sorted(n for n in LEXNAMES if n.startswith("verb.")),
        sorted(n for n in LEXNAMES if n.startswith(("adj.", "adv."))),
    ]
    # quota[g, s]: classes of group g dealt to split s. Val and test take their proportional share of
    # every group (largest-remainder rounding, so split totals are exact); train takes the rest.
    quota = np.zeros((len(groups), 3), dtype=np.int64)
    for s in (1, 2):
        exact = np.array([len(group) * sizes[s] / len(LEXNAMES) for group in groups])
        quota[:, s] = np.floor(exact)
        shortfall = sizes[s] - int(quota[:, s].sum())
        quota[np.argsort(-(exact - quota[:, s]), kind="stable")[:shortfall], s] += 1
    quota[:, 0] = [len(group) for group in groups] - quota[:, 1:].sum(axis=1)
    if (quota[:, 0] < 0).any():
        raise ValueError(f"sizes={sizes} leaves too few classes for train in some part of speech")
    rng = np.random.default_rng(seed)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for g, group in enumerate(groups):
        order = [group[i] for i in rng.permutation(len(group))]
        start = 0
        for s, name in enumerate(splits):
            splits[name] += order[start : start + int(quota[g, s])]
            start += int(quota[g, s])
    return {name: sorted(names) for name, names in splits.items()}


@dataclass(frozen=True)
class GlossRows:
    """One split of a gloss classification task: ``texts[i]`` has class ``labels[i]`` (an index
    into the task's ``label_names``)."""

    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class GlossTask:
    """A supersense classification task: training and test glosses (no gloss in both)."""

    train: GlossRows
    test: GlossRows
    label_names: tuple[str, ...]


def supersense_task(
    classes: Sequence[str] | None = None,
    per_class: tuple[int, int] = (100, 50),
    seed: int = 0,
    data: SupersenseData | None = None,
) -> GlossTask:
    """A many-class text task: the supersense of a WordNet gloss, among ``classes``.

    For every class, ``per_class[0] + per_class[1]`` of its synsets are drawn without replacement
    (one ``numpy.random.default_rng(seed)``): the first ``per_class[0]`` train, the rest test, so no
    gloss is in both. The default classes are the meta-test supersenses of :func:`class_splits`
    (seed 0), which chapter 6's meta-trained ProtoNet head never saw.

    Args:
        classes: supersense names (default: ``class_splits()["test"]``, 10 classes).
        per_class: (training, test) glosses per class.
        seed: the draw.
        data: the parsed WordNet (default: :func:`wordnet_supersenses`).

    >>> task = supersense_task(per_class=(4, 2))                              # doctest: +SKIP
    >>> len(task.label_names), len(task.train), len(task.test)                # doctest: +SKIP
    (10, 40, 20)
    """
    data = data if data is not None else wordnet_supersenses()
    names = tuple(classes) if classes is not None else tuple(class_splits()["test"])
    n_train, n_test = per_class
    if n_train < 1 or n_test < 1:
        raise ValueError(f"per_class={per_class} needs at least one training and one test gloss per class")
    rng = np.random.default_rng(seed)
    train, test = GlossRows([], []), GlossRows([], [])
    for y, name in enumerate(names):
        rows = data.indices([name])
        if len(rows) < n_train + n_test:
            raise ValueError(f"{name} has {len(rows)} synsets, fewer than per_class={per_class} asks")
        picked = rng.choice(rows, size=n_train + n_test, replace=False)
        for split, part in ((train, picked[:n_train]), (test, picked[n_train:])):
            split.texts.extend(data.glosses[i] for i in part)
            split.labels.extend([y] * len(part))
    return GlossTask(train, test, names)
