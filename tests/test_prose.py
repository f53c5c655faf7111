"""The book's prose: no typed result and no workshop words.

Checks the committed book (tools/check_prose.py) and plants each kind of failure to show that the
check finds it.
"""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


prose = _tool("check_prose")


def test_the_book_types_no_result_and_says_nothing_of_its_making():
    assert prose.findings() == []


@pytest.mark.parametrize(
    "sentence",
    [
        "The probe scores 0.733 on the test set.",
        "Fine-tuning takes 14 min on two cores.",
        "LoRA trains 0.3% of the weights.",
        "The student is 2.1× faster.",
        "Its loss falls five times faster.",
        "Scoring is a third of the run time.",
    ],
)
def test_a_typed_result_is_found(sentence):
    assert len(prose.typed_numbers("07_comparison cell 1", sentence)) == 1


@pytest.mark.parametrize(
    "sentence",
    [
        "The probe scores {glue:text}`probe_acc:.3f` on the test set.",
        "SetFit reports 71.6 on CR {cite}`tunstall2022efficient`.",
        "A 95% interval over draws.",
        "Run `clf.fit(x, lr=0.01)` first.",
        "The loss is $0.5 \\cdot x$.",
        "```python\nLR = 0.01\n```",
        "Install learn2learn 0.2.0 on Python 3.11 and WordNet 3.0.",
        "See [the log](https://example.org/v1.5/run.html).",
        "**Run time** of this chapter: full profile ≈ 14 min.",
    ],
)
def test_glued_cited_code_math_versions_and_run_times_are_not_results(sentence):
    assert prose.typed_numbers("07_comparison cell 1", sentence) == []


def test_an_allowed_definition_is_allowed_only_where_it_is_defined():
    sentence = "We mask 30% of the tokens."
    assert prose.typed_numbers("01_pretraining cell 11", sentence) == []
    assert len(prose.typed_numbers("04_peft cell 3", sentence)) == 1


@pytest.mark.parametrize(
    "text",
    ["The goal of 0.75 is met.", "These are throwaway measurements.", "Measured while planning this."],
)
def test_workshop_words_are_found(text):
    assert prose.workshop_phrases(text)


def test_a_reader_may_still_open_an_issue():
    assert prose.workshop_phrases("Open an issue in the book's repository.") == []
