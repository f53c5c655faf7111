"""The book's prose types no result and says nothing about how the book was made.

Scans the markdown of every notebook in ``notebooks/`` and every page in ``book/`` for

- *typed numbers*: decimals, percentages, ``N×``, "N times", fractions such as "a quarter of" and
  durations, outside glue roles, code, math and links, in sentences without a ``{cite}`` (a
  published number carries its citation in the same sentence);
- *workshop words*: phrases about the making of the book ("the bar", "goal", "planning", …).

A number may also be a definition rather than a result (a masking rate the chapter chooses, the
confidence level, a version, a model's size); those are listed in ``ALLOWED`` with the reason.
A chapter's **Run time** paragraph (measured times, per profile) is skipped.

    .venv/bin/python tools/check_prose.py        # prints every finding, exit status 1 if any
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (page name prefix, the number as written) -> why it is not a result
ALLOWED: dict[tuple[str, str], str] = {
    ("", "95%"): "the confidence level of every interval",
    ("", "95 %"): "the confidence level of every interval",
    ("", "22.7"): "MiniLM's parameter count (millions), a property of the model",
    ("", "134.5"): "SmolLM2's parameter count (millions), a property of the model",
    ("01_", "80%"): "BERT's 80/10/10 corruption rule, a definition",
    ("01_", "10%"): "BERT's 80/10/10 corruption rule, a definition",
    ("01_", "15%"): "masking rates the chapter chooses",
    ("01_", "30%"): "masking rates the chapter chooses",
    ("01_", "45%"): "masking rates the chapter chooses",
    ("01_", "5%"): "the share of segments held out, a setting",
    ("01_", "four times"): "an exercise's setting",
    ("02_", "three times"): "the bounds of the search space, a setting",
    ("02_", "ten times"): "an exercise's setting",
    ("02_", "0.1"): "an exercise's setting",
    ("03_", "0.1"): "chance accuracy with ten classes, a definition",
    ("03_", "0.100"): "chance accuracy with ten classes, a definition",
    ("04_", "a quarter of"): "the held-out share of the labels, a setting",
    ("04_", "97%"): "the threshold the text compares LoRA's share of accuracy with",
    ("04_", "100%"): "full fine-tuning trains every parameter, a definition",
    ("05_", "0.55"): "an illustrative probability",
    ("05_", "1.00"): "the teacher's speed-up relative to itself, a definition",
    ("06_", "0.200"): "chance accuracy with five classes, a definition",
    ("models_and_data", "0.7"): "the size of the data package",
    ("models_and_data", "57.8 %"): "the class balance of the data, a property of the data",
    ("models_and_data", "58 %"): "the class balance of the data, a property of the data",
}
VERSION_BEFORE = re.compile(r"(?:§|version |Python |WordNet |peft |Apache-|v)$")

NUMBER = re.compile(
    r"(?<![\w.,])("
    r"\d[\d,]*\.\d+(?:\s?%)?"  # 0.744, 57.8 %
    r"|\d+\s?%"  # 30%
    r"|\d[\d,]*(?:\.\d+)?\s?[×x](?!\w)"  # 2,000×
    r"|\d[\d,]*(?:\.\d+)?\s?(?:ms|s|min|minutes?|seconds?|hours?)\b"  # 30 s
    r"|\b(?:two|three|four|five|six|seven|eight|nine|ten|twenty|a hundred|a thousand)\s+times\b"
    r"|\ba (?:quarter|third|fifth|tenth|half) (?:of|the)\b"
    r")",
    re.IGNORECASE,
)
WORKSHOP = re.compile(
    r"\b(?:the bar\b|goals?\b|throwaway|planning|planned|TODO|FIXME|(?<!open an )issue\b"
    r"|this session|note to self|measurements made while)",
    re.IGNORECASE,
)
# removed before scanning: glue roles, inline code, math, link targets and addresses
HIDDEN = [
    re.compile(r"\{glue:[a-z]+\}`[^`]*`"),
    re.compile(r"\$\$.*?\$\$", re.DOTALL),
    re.compile(r"\$[^$\n]+\$"),
    re.compile(r"`[^`\n]*`"),
    re.compile(r"\]\([^)]*\)"),
    re.compile(r"https?://\S+"),
    re.compile(r"^\*\*Run time\*\*.*?(?=\n\s*\n|\Z)", re.DOTALL | re.MULTILINE),
]
# fenced code (```python, ```bash, plain ```) is removed; directive fences (```{exercise}) are kept
CODE_FENCE = re.compile(r"^(`{3,})(?!\{)[^\n]*\n.*?^\1\s*$", re.DOTALL | re.MULTILINE)
DIRECTIVE_LINE = re.compile(r"^(?:`{3,}.*|:{3,}.*|:[\w-]+:.*)$", re.MULTILINE)
SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[A-Z*(_])|\n\s*\n|\n\s*[-|]")


def prose_sources(root: Path = ROOT) -> Iterator[tuple[str, str]]:
    """(where, markdown) for every notebook markdown cell and every page of ``book/``."""
    for notebook in sorted((root / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        for index, cell in enumerate(cells):
            if cell["cell_type"] == "markdown":
                yield f"{notebook.stem} cell {index}", "".join(cell["source"])
    for page in sorted((root / "book").glob("*.md")):
        yield page.stem, page.read_text()


def readable_text(markdown: str) -> str:
    """The words a reader reads as prose: code, math, glue roles and addresses removed."""
    text = CODE_FENCE.sub(" ", markdown)
    text = DIRECTIVE_LINE.sub(" ", text)
    for pattern in HIDDEN:
        text = pattern.sub(" ", text)
    return text


def typed_numbers(where: str, markdown: str) -> list[str]:
    """Each result-like number typed in ``markdown`` that is neither cited nor allowed, in context."""
    found = []
    for sentence in SENTENCE_END.split(readable_text(markdown)):
        sentence = " ".join(sentence.split())
        if "{cite" in sentence:
            continue
        for match in NUMBER.finditer(sentence):
            number = match.group(1)
            allowed = any(
                where.startswith(prefix) and number.lower() == literal for prefix, literal in ALLOWED
            )
            if allowed or VERSION_BEFORE.search(sentence[: match.start()]):
                continue
            if re.fullmatch(r"\d+\.\d+\.\d+", sentence[match.start() :].split()[0].rstrip(",.)")):
                continue  # a version number such as 0.2.0
            found.append(f"{number!r} in: {sentence[:140]}")
    return found


def workshop_phrases(markdown: str) -> list[str]:
    """Each phrase of ``markdown`` that speaks about the making of the book, in context."""
    text = readable_text(markdown)
    return [
        f"{m.group(0)!r} in: {' '.join(text[max(0, m.start() - 50) : m.end() + 50].split())}"
        for m in WORKSHOP.finditer(text)
    ]


def findings(root: Path = ROOT) -> list[str]:
    """Every typed number and workshop phrase of the book, one line each with where it is."""
    lines = []
    for where, markdown in prose_sources(root):
        lines += [f"{where}: typed number {hit}" for hit in typed_numbers(where, markdown)]
        lines += [f"{where}: workshop words {hit}" for hit in workshop_phrases(markdown)]
    return lines


if __name__ == "__main__":
    problems = findings()
    print("\n".join(problems) or "no typed numbers, no workshop words")
    sys.exit(1 if problems else 0)
