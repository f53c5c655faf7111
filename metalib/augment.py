"""Text augmentation and perturbation, each deterministic given a ``random.Random``.

Augmentation makes extra training texts with the same label (Wei and Zou 2019, "EDA: easy data
augmentation techniques"); the same functions perturb test texts for robustness checks
(:func:`typos` is only meant for that). Every function takes the generator as an argument, so a
run is reproduced by reseeding one generator; none touches the global ``random`` state.

Tokenisation is plain whitespace: ``text.split()``; results are joined with single spaces, so runs
of whitespace and newlines collapse to one space even where nothing else changed. Punctuation stays
attached to its word (``"film,"`` is one word); :func:`synonym_replace` and :func:`typos` look past
simple leading and trailing punctuation.

Example:
    >>> import random
    >>> from functools import partial
    >>> word_swap("a b c d", 1, random.Random(0))
    'a d c b'
    >>> augment(["a fine film", "dull"], [1, 0], partial(word_dropout, p=0.3), copies=1, seed=1)
    (['a fine film', 'dull', 'fine film', 'dull'], [1, 0, 1, 0])
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "STOP_WORDS",
    "augment",
    "one_of",
    "synonym_replace",
    "typos",
    "word_dropout",
    "word_swap",
    "wordnet_synonyms",
]

STOP_WORDS: frozenset[str] = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves""".split()  # noqa: SIM905 (a word list)
)
"""Function words :func:`synonym_replace` never replaces: WordNet lists many of them as nouns
(``"a"`` → ``"angstrom"``, ``"in"`` → ``"indium"``, ``"it"`` → ...), which would only make noise."""

_WORD = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)
"""leading punctuation, core, trailing punctuation (the core keeps inner apostrophes and hyphens)"""


def _check_probability(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")


def _split_punctuation(word: str) -> tuple[str, str, str]:
    """``'"Great!'`` → ``('"', 'Great', '!')``; a word of punctuation only is all lead."""
    lead, core, trail = _WORD.match(word).groups()
    return lead, core, trail


def word_dropout(text: str, p: float, rng: random.Random) -> str:
    """Drop each whitespace-separated word independently with probability ``p``.

    Never returns an empty string for a non-empty text: if every word was dropped, one of them
    (chosen with ``rng``) is kept.
    """
    _check_probability(p)
    words = text.split()
    if not words:
        return text
    kept = [word for word in words if rng.random() >= p]
    return " ".join(kept) if kept else rng.choice(words)


def word_swap(text: str, n_swaps: int, rng: random.Random) -> str:
    """Swap two words ``n_swaps`` times; each swap picks any two distinct positions uniformly (not
    only neighbours), as EDA's random swap does. Texts of fewer than two words come back as they are
    (whitespace normalised)."""
    if n_swaps < 0:
        raise ValueError(f"n_swaps must be >= 0, got {n_swaps}")
    words = text.split()
    if len(words) < 2:
        return " ".join(words) if words else text
    for _ in range(n_swaps):
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


@functools.lru_cache(maxsize=1)
def wordnet_synonyms() -> dict[str, tuple[str, ...]]:
    """Lower-case single-word WordNet lemma → its single-word synonyms, sorted.

    The synonyms of a word are the other lemmas of every synset that contains it (all parts of
    speech and senses together: ``"film"`` → ``"celluloid"``, ``"flick"``, ``"movie"``, ...), lower-cased,
    without the word itself. Multi-word lemmas (``"motion picture"``) are left out on both sides.
    Words whose synsets hold no other single-word lemma do not appear.

    Measured on WordNet 3.0: 49,065 words have synonyms; building takes about 0.9 s on 2 CPU cores
    (half of it parsing WordNet with :func:`metalib.data.wordnet.wordnet_supersenses`); memoised, so later
    calls are free. The returned dict is shared: do not modify it.

    Raises:
        FileNotFoundError: WordNet is not installed (the message says how to install it).
    """
    from metalib.data import wordnet_supersenses

    synonyms: dict[str, set[str]] = {}
    for lemmas in wordnet_supersenses().lemmas:
        words = {lemma.lower() for lemma in lemmas if " " not in lemma}
        if len(words) < 2:
            continue
        for word in words:
            synonyms.setdefault(word, set()).update(words - {word})
    return {word: tuple(sorted(others)) for word, others in sorted(synonyms.items())}


def synonym_replace(
    text: str,
    p: float,
    rng: random.Random,
    synonyms: Mapping[str, Sequence[str]] | None = None,
    *,
    stop_words: frozenset[str] = STOP_WORDS,
) -> str:
    """Replace each word that has synonyms, with probability ``p``, by one of them chosen uniformly.

    Words are looked up lower-cased after stripping leading and trailing punctuation, which is put
    back (``"Great!"`` → ``"Groovy!"``); an upper-case first letter is kept, the rest of the synonym
    stays lower case. There is no lemmatiser: inflected forms (``"films"``, ``"ran"``) are only
    replaced if WordNet lists them. Word senses are not disambiguated, so some replacements are
    wrong in context (``"fine"`` → ``"ok"`` or ``"mulct"``): this is noise by design.

    Args:
        p: replacement probability per word that has synonyms (other words draw nothing from ``rng``).
        synonyms: word → candidates; default :func:`wordnet_synonyms` (built on first use).
        stop_words: lower-case words never replaced; default :data:`STOP_WORDS`.
    """
    _check_probability(p)
    if synonyms is None:
        synonyms = wordnet_synonyms()
    out = []
    for word in text.split():
        lead, core, trail = _split_punctuation(word)
        key = core.lower()
        candidates = synonyms.get(key) if key not in stop_words else None
        if candidates and rng.random() < p:
            new = rng.choice(list(candidates))
            core = new[0].upper() + new[1:] if core[:1].isupper() else new
            word = lead + core + trail
        out.append(word)
    return " ".join(out) if out else text


def typos(text: str, p: float, rng: random.Random) -> str:
    """Character noise for robustness tests: in each word whose core (punctuation stripped) has at
    least 4 characters, with probability ``p`` swap two adjacent inner characters (never the first
    or the last, so the word stays readable: ``"movie"`` → ``"mvoie"``). Swapping two equal letters
    (``"book"``) leaves the word as it was."""
    _check_probability(p)
    out = []
    for word in text.split():
        lead, core, trail = _split_punctuation(word)
        if len(core) >= 4 and rng.random() < p:
            i = rng.randrange(1, len(core) - 2)  # swap i and i + 1, both inner
            core = core[:i] + core[i + 1] + core[i] + core[i + 2 :]
            word = lead + core + trail
        out.append(word)
    return " ".join(out) if out else text


def augment(
    texts: Sequence[str],
    labels: Sequence[int],
    fn: Callable[..., str],
    copies: int = 1,
    seed: int = 0,
) -> tuple[list[str], list[int]]:
    """The original texts followed by ``copies`` augmented versions of each, with their labels.

    Order: all originals, then the first copy of every text, then the second, ... (so
    ``texts[:len(originals)]`` are the originals). A copy may equal its original (a short text, no
    synonym found); it is kept, so the result always has ``(1 + copies) * len(texts)`` rows.

    Args:
        fn: called as ``fn(text, rng=rng)``, e.g. ``functools.partial(word_dropout, p=0.1)``.
        copies: augmented versions per text.
        seed: seeds the one ``random.Random`` threaded through every call, in the order above.
    """
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if copies < 0:
        raise ValueError(f"copies must be >= 0, got {copies}")
    rng = random.Random(seed)
    out_texts, out_labels = list(texts), list(labels)
    for _ in range(copies):
        out_texts += [fn(text, rng=rng) for text in texts]
        out_labels += list(labels)
    return out_texts, out_labels


def one_of(*fns: Callable[..., str]) -> Callable[..., str]:
    """A perturbation that applies one of ``fns``, chosen uniformly with the same ``rng`` per text
    (EDA's mix of operations: one operation per augmented copy), e.g.
    ``one_of(partial(word_dropout, p=0.1), partial(word_swap, n_swaps=1))``."""
    if not fns:
        raise ValueError("one_of needs at least one function")

    def apply(text: str, rng: random.Random) -> str:
        return rng.choice(fns)(text, rng=rng)

    return apply
