"""Tests of metalib.data.wordnet on the real WordNet 3.0 files."""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from metalib.data import wordnet
from metalib.data.wordnet import LEXNAMES, class_splits, find_wordnet_dir, pooled_rows, wordnet_supersenses

SEED0_SPLITS = {
    "train": [
        "adj.all", "adj.pert", "noun.Tops", "noun.animal", "noun.artifact", "noun.attribute",
        "noun.cognition", "noun.event", "noun.food", "noun.group", "noun.phenomenon", "noun.process",
        "noun.relation", "noun.state", "noun.substance", "noun.time", "verb.change", "verb.cognition",
        "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
        "verb.perception", "verb.possession",
    ],
    "val": [
        "adj.ppl", "noun.body", "noun.communication", "noun.location", "noun.motive", "noun.possession",
        "noun.quantity", "verb.body", "verb.motion", "verb.weather",
    ],
    "test": [
        "adv.all", "noun.act", "noun.feeling", "noun.object", "noun.person", "noun.plant", "noun.shape",
        "verb.emotion", "verb.social", "verb.stative",
    ],
}  # fmt: skip
POS_FILES = ("noun", "verb", "adj", "adv")


@pytest.fixture(scope="module")
def data() -> wordnet.SupersenseData:
    return wordnet_supersenses()


@pytest.fixture
def no_wordnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hide every default WordNet location: no system dir, empty home and NLTK_DATA."""
    monkeypatch.delenv("METALIB_WORDNET_DIR", raising=False)
    monkeypatch.setattr(wordnet, "_SYSTEM_DIRS", ())
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "nltk_data"))
    elsewhere = [d for d in wordnet._nltk_dirs() if (d / "wordnet").exists() or (d / "wordnet.zip").exists()]
    if elsewhere:
        pytest.skip(f"WordNet also installed in {elsewhere}")
    return tmp_path


def test_lexnames_are_the_45_documented_files() -> None:
    assert len(LEXNAMES) == len(set(LEXNAMES)) == 45
    assert (LEXNAMES[0], LEXNAMES[3], LEXNAMES[43], LEXNAMES[44]) == (
        "adj.all", "noun.Tops", "verb.weather", "adj.ppl",
    )  # fmt: skip


def test_sizes_and_classes(data: wordnet.SupersenseData) -> None:
    assert len(data) == 117_659
    assert len(set(data.synset_ids)) == len(data)
    counts = data.class_counts()
    assert set(counts) == set(LEXNAMES) and data.class_names == sorted(LEXNAMES)
    assert min(counts.values()) == counts["noun.motive"] == 42
    assert max(counts.values()) == counts["adj.all"] == 14_435
    assert Counter(data.pos) == {"n": 82_115, "v": 13_767, "s": 10_693, "a": 7_463, "r": 3_621}
    assert data.source == Path("/usr/share/wordnet") or data.source.exists()


def test_rows_parse_lemmas_and_glosses(data: wordnet.SupersenseData) -> None:
    first = 0
    assert (data.synset_ids[first], data.labels[first], data.lemmas[first]) == (
        "00001740-n", "noun.Tops", ("entity",),
    )  # fmt: skip
    assert data.glosses[first].startswith("that which is perceived or known or inferred")
    dog = data.synset_ids.index("02084071-n")
    assert data.labels[dog] == "noun.animal" and "dog" in data.lemmas[dog]
    assert "Canis" in data.glosses[dog] and "|" not in data.glosses[dog]
    all_lemmas = [lemma for lemmas in data.lemmas for lemma in lemmas]
    assert not any("_" in lemma or lemma.endswith(("(a)", "(p)", "(ip)")) for lemma in all_lemmas)
    assert "ice cream" in all_lemmas and "galore" in all_lemmas  # underscore and "(ip)" marker cleaned
    assert all(gloss and gloss == gloss.strip() for gloss in data.glosses)


def test_indices_selects_classes(data: wordnet.SupersenseData) -> None:
    index = data.indices(["noun.motive", "verb.weather"])
    assert len(index) == 42 + 81
    assert {data.labels[i] for i in index} == {"noun.motive", "verb.weather"}
    with pytest.raises(ValueError, match="unknown supersense.*noun.dogs"):
        data.indices(["noun.dogs"])


def test_class_splits_fixed_disjoint_and_stratified() -> None:
    splits = class_splits()
    assert splits == SEED0_SPLITS == class_splits(seed=0)
    assert [len(v) for v in splits.values()] == [25, 10, 10]
    names = [n for v in splits.values() for n in v]
    assert sorted(names) == sorted(LEXNAMES)  # disjoint and complete
    for name, group in splits.items():
        pos = Counter(n.split(".")[0] for n in group)
        expected = {"train": (14, 9, 2), "val": (6, 3, 1), "test": (6, 3, 1)}[name]
        assert (pos["noun"], pos["verb"], pos["adj"] + pos["adv"]) == expected
    assert class_splits(seed=1) != splits
    assert sorted(n for v in class_splits(seed=1).values() for n in v) == sorted(LEXNAMES)
    other = class_splits(seed=3, sizes=(35, 5, 5))
    assert [len(v) for v in other.values()] == [35, 5, 5]


@pytest.mark.parametrize("sizes", [(25, 10, 9), (45, 0, 0), (25, 10)])
def test_class_splits_rejects_bad_sizes(sizes: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="summing to 45"):
        class_splits(sizes=sizes)  # type: ignore[arg-type]


def test_class_splits_rejects_unstratifiable_sizes() -> None:
    with pytest.raises(ValueError, match="too few classes for train"):
        class_splits(sizes=(1, 4, 40))


def test_explicit_dir_and_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = find_wordnet_dir()  # wherever this machine keeps WordNet
    if found.suffix == ".zip":
        pytest.skip("WordNet is only available zipped here")
    copy = tmp_path / "wn"
    copy.mkdir()
    for pos in ("noun", "verb", "adj", "adv"):
        (copy / f"data.{pos}").symlink_to(found / f"data.{pos}")
    assert find_wordnet_dir(copy) == copy
    monkeypatch.setenv("METALIB_WORDNET_DIR", str(copy))
    assert find_wordnet_dir() == copy


def test_missing_wordnet_error_names_the_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METALIB_WORDNET_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="METALIB_WORDNET_DIR") as info:
        wordnet_supersenses()
    message = str(info.value)
    assert "apt-get install wordnet-base" in message
    assert "python -m nltk.downloader wordnet" in message
    with pytest.raises(FileNotFoundError, match="wordnet_dir=.*apt-get install wordnet-base"):
        wordnet_supersenses(tmp_path / "nowhere")


def test_nothing_found_anywhere(no_wordnet: Path) -> None:
    with pytest.raises(FileNotFoundError, match="WordNet 3.0 not found.*nltk.downloader wordnet"):
        find_wordnet_dir()


def test_found_in_nltk_folder_and_zip(no_wordnet: Path, data: wordnet.SupersenseData) -> None:
    corpora = no_wordnet / "nltk_data" / "corpora"
    corpora.mkdir(parents=True)
    with zipfile.ZipFile(corpora / "wordnet.zip", "w", compression=zipfile.ZIP_STORED) as archive:
        for pos in POS_FILES:
            archive.write(f"{data.source}/data.{pos}", f"wordnet/data.{pos}")
    assert find_wordnet_dir() == corpora / "wordnet.zip"
    from_zip = wordnet_supersenses()
    assert from_zip.synset_ids == data.synset_ids and from_zip.glosses == data.glosses
    (corpora / "wordnet").mkdir()
    for pos in POS_FILES:
        (corpora / "wordnet" / f"data.{pos}").symlink_to(data.source / f"data.{pos}")
    assert find_wordnet_dir() == corpora / "wordnet"  # an unpacked folder wins over the zip


@pytest.mark.parametrize(
    ("bad_line", "match"),
    [
        ("00001 02 r zz\n", r"data\.adv starting '00001 02 r zz"),  # word count not hex
        ("00001 02 r 01 fast 0 000\n", r"data\.adv starting '00001 02 r 01 fast.*no gloss"),
        ("00001 45 r 01 fast 0 000 | quickly\n", "lex_filenum 45 is not in 0..44"),
    ],
)
def test_malformed_line_is_reported(tmp_path: Path, bad_line: str, match: str) -> None:
    header = "  1 This software and database is being provided to you, the LICENSEE\n"
    good = "00001740 03 n 01 entity 0 000 | that which is perceived\n"
    for pos in POS_FILES:
        (tmp_path / f"data.{pos}").write_text(header + (good if pos != "adv" else bad_line))
    with pytest.raises(ValueError, match=match):
        wordnet_supersenses(tmp_path)
    (tmp_path / "data.adv").write_text(header)
    small = wordnet_supersenses(tmp_path)
    assert small.labels == ("noun.Tops",) * 3 and small.lemmas[0] == ("entity",)


def test_pooled_rows_sample_each_class_of_each_split(data):
    splits = class_splits(seed=0)
    pool = pooled_rows(data, splits, (3, 2, 1), seed=0)
    labels = [data.labels[i] for i in pool]
    assert len(pool) == 25 * 3 + 10 * 2 + 10 * 1 and len(set(pool.tolist())) == len(pool)
    assert labels[:3] == [splits["train"][0]] * 3 and labels[-1] == splits["test"][-1]
    np.testing.assert_array_equal(pool, pooled_rows(data, splits, (3, 2, 1), seed=0))
    assert not np.array_equal(pool, pooled_rows(data, splits, (3, 2, 1), seed=1))
    with pytest.raises(ValueError, match="one positive count per split"):
        pooled_rows(data, splits, (3, 2))


def test_supersense_task_draws_disjoint_balanced_splits(data: wordnet.SupersenseData) -> None:
    task = wordnet.supersense_task(per_class=(6, 3), seed=1, data=data)
    assert task.label_names == tuple(SEED0_SPLITS["test"])  # chapter 6's meta-test classes
    assert Counter(task.train.labels) == {y: 6 for y in range(10)}
    assert Counter(task.test.labels) == {y: 3 for y in range(10)}
    assert not set(task.train.texts) & set(task.test.texts)
    for text, y in zip(task.test.texts, task.test.labels, strict=True):
        assert data.labels[data.glosses.index(text)] == task.label_names[y]
    again = wordnet.supersense_task(per_class=(6, 3), seed=1, data=data)
    assert again == task and wordnet.supersense_task(per_class=(6, 3), seed=2, data=data) != task


def test_supersense_task_rejects_impossible_sizes(data: wordnet.SupersenseData) -> None:
    with pytest.raises(ValueError, match="at least one"):
        wordnet.supersense_task(per_class=(0, 3), data=data)
    with pytest.raises(ValueError, match="noun.motive has 42 synsets"):
        wordnet.supersense_task(["noun.motive"], per_class=(40, 3), data=data)
