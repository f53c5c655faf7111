"""Text augmentation: determinism per generator, what each perturbation may and may not change."""

from __future__ import annotations

import random
from collections import Counter
from functools import partial

import pytest

from metalib import augment as aug

TEXT = 'The film is a "great", boring mess... Acting: terrific! Overlong though'


def test_word_dropout_drops_about_p_and_never_empties():
    rng = random.Random(0)
    words = " ".join(f"w{i}" for i in range(1000))
    kept = aug.word_dropout(words, 0.3, rng).split()
    assert 650 < len(kept) < 750 and kept == sorted(kept, key=lambda w: int(w[1:]))  # order kept
    for seed in range(20):
        out = aug.word_dropout("only two", 1.0, random.Random(seed))
        assert out in ("only", "two")
    assert aug.word_dropout("keep   all\nwords", 0.0, rng) == "keep all words"
    assert aug.word_dropout("", 0.5, rng) == ""
    with pytest.raises(ValueError, match="p must be"):
        aug.word_dropout("a b", 1.5, rng)


def test_word_swap_permutes_words():
    rng = random.Random(1)
    text = "one two three four five six"
    once = aug.word_swap(text, 1, rng).split()
    assert sorted(once) == sorted(text.split())
    assert sum(a != b for a, b in zip(once, text.split(), strict=True)) == 2  # one swap: two positions
    assert Counter(aug.word_swap(text, 5, rng).split()) == Counter(text.split())
    assert aug.word_swap("single", 3, rng) == "single" and aug.word_swap(text, 0, rng) == text
    # any pair, not only neighbours: over many draws, swaps of distant words occur
    words = text.split()
    distant = set()
    for _ in range(200):
        swapped = aug.word_swap(text, 1, rng).split()
        distant.add(tuple(i for i, (a, b) in enumerate(zip(swapped, words, strict=True)) if a != b))
    assert (0, 5) in distant and len(distant) == 15  # all C(6, 2) pairs


def test_same_seed_same_output_and_no_global_state():
    for fn in (
        partial(aug.word_dropout, p=0.3),
        partial(aug.word_swap, n_swaps=2),
        partial(aug.typos, p=0.5),
        partial(aug.synonym_replace, p=0.5),
    ):
        random.seed(123)
        first = fn(TEXT, rng=random.Random(7))
        after = random.random()
        random.seed(123)
        assert fn(TEXT, rng=random.Random(7)) == first
        assert random.random() == after  # the global generator was not used
    outs = {aug.word_swap(TEXT, 2, random.Random(seed)) for seed in range(10)}
    assert len(outs) > 5


def test_wordnet_synonyms_table():
    table = aug.wordnet_synonyms()
    assert aug.wordnet_synonyms() is table  # memoised
    assert 45_000 < len(table) < 55_000
    assert {"movie", "flick", "celluloid"} <= set(table["film"])
    assert "film" in table["movie"]  # symmetric: synonymy is sharing a synset
    for word in ("film", "boring", "great"):
        syns = table[word]
        assert word not in syns and list(syns) == sorted(syns)
        assert all(" " not in s and s == s.lower() for s in syns)
    assert "motion picture" not in table and "films" not in table  # single words, no inflections


def test_synonym_replace_keeps_case_punctuation_and_stop_words():
    synonyms = {"great": ("terrific",), "film": ("movie",), "the": ("da",), "mess": ("muddle",)}
    text = 'The Film is "great", a mess!'
    assert aug.synonym_replace(text, 1.0, random.Random(0), synonyms) == 'The Movie is "terrific", a muddle!'
    assert aug.synonym_replace(text, 0.0, random.Random(0), synonyms) == text
    # with WordNet: every changed word is a listed synonym of the original
    table = aug.wordnet_synonyms()
    original = TEXT.split()
    changed = 0
    for seed in range(5):
        out = aug.synonym_replace(TEXT, 0.7, random.Random(seed)).split()
        assert len(out) == len(original)
        for before, after in zip(original, out, strict=True):
            if before != after:
                changed += 1
                b, a = aug._split_punctuation(before), aug._split_punctuation(after)
                assert (b[0], b[2]) == (a[0], a[2])  # punctuation kept
                assert a[1].lower() in table[b[1].lower()]
                assert a[1][0].isupper() == b[1][0].isupper()
                assert b[1].lower() not in aug.STOP_WORDS
    assert changed > 5


def test_typos_swap_inner_characters_of_long_words_only():
    rng = random.Random(0)
    text = "a cat sings movies, acting: wonderful!"  # no two equal adjacent inner letters
    out = aug.typos(text, 1.0, rng).split()
    for before, after in zip(text.split(), out, strict=True):
        core_b, core_a = aug._split_punctuation(before)[1], aug._split_punctuation(after)[1]
        if len(core_b) < 4:
            assert after == before
            continue
        assert sorted(core_a) == sorted(core_b) and (core_a[0], core_a[-1]) == (core_b[0], core_b[-1])
        diff = [i for i, (x, y) in enumerate(zip(core_a, core_b, strict=True)) if x != y]
        assert len(diff) == 2 and diff[1] == diff[0] + 1 and before[-1] == after[-1]
    assert aug.typos(text, 0.0, rng) == text


def test_augment_appends_copies_with_one_generator():
    texts, labels = ["a fine film", "dull and slow", "we loved it"], [1, 0, 1]
    fn = partial(aug.word_dropout, p=0.4)
    out_texts, out_labels = aug.augment(texts, labels, fn, copies=2, seed=3)
    assert out_texts[:3] == texts and out_labels == labels * 3 and len(out_texts) == 9
    rng = random.Random(3)  # the same draws, in the documented order
    assert out_texts[3:] == [fn(t, rng=rng) for t in texts + texts]
    assert aug.augment(texts, labels, fn, copies=2, seed=3) == (out_texts, out_labels)
    assert aug.augment(texts, labels, fn, copies=0) == (texts, labels)
    with pytest.raises(ValueError, match="labels"):
        aug.augment(texts, [1], fn)


def test_one_of_applies_one_function_per_text():
    upper = lambda text, rng: text.upper()  # noqa: E731
    reverse = lambda text, rng: text[::-1]  # noqa: E731
    mix = aug.one_of(upper, reverse)
    rng = random.Random(0)
    outs = [mix("abc", rng=rng) for _ in range(200)]
    assert set(outs) == {"ABC", "cba"} and 60 < outs.count("ABC") < 140
    first = aug.augment(["abc", "de"], [0, 1], mix, copies=2, seed=5)
    assert first == aug.augment(["abc", "de"], [0, 1], mix, copies=2, seed=5)  # deterministic per seed
    with pytest.raises(ValueError, match="at least one"):
        aug.one_of()
