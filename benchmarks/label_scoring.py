"""How much do batching and a shared prefix buy when a causal LM scores answer words?

SmolLM2-135M-Instruct scores the two answer groups of chapter 3's sentiment prompt ("negative" /
"positive", capitalised or not) after prompts of Rotten Tomatoes test snippets, three ways, one
after the other in one run (:func:`metalib.methods.prompting.scoring_speeds`): one prompt per
forward pass; ``--batch`` prompts per pass; batched with the prompts' common prefix (the
instruction and any demonstrations) run once and its key/value cache reused. The three compute the
same scores (the largest difference is printed). Prompts carry ``--shots`` demonstrations from the
training split, so the shared prefix is long when shots are many: that is where it pays.

    .venv/bin/python benchmarks/label_scoring.py [--prompts 48] [--shots 0 8]
"""

from __future__ import annotations

import argparse

from metalib import data, zoo
from metalib.methods.prompting import PromptTemplate, Verbalizer, sample_demonstrations, scoring_speeds

WORDS = (("negative", "Negative"), ("positive", "Positive"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=48, help="test snippets scored each way")
    parser.add_argument("--shots", type=int, nargs="+", default=[0, 8], help="demonstrations per prompt")
    parser.add_argument("--batch", type=int, default=16, help="prompts per forward pass")
    args = parser.parse_args()

    model, tokenizer = zoo.load_causal_lm("smollm2-135m-instruct")
    splits = data.rotten_tomatoes(seed=0)
    texts = splits.test.texts[: args.prompts]
    template = PromptTemplate("benchmark", "", "Review: {text}\nSentiment:")
    verbalizer = Verbalizer(WORDS)
    print(f"{args.prompts} prompts, batches of {args.batch}, 2 answer groups of 2 words")
    print(f"{'shots':>5}  {'one at a time':>14}  {'batched':>9}  {'+ shared prefix':>16}  ratio  max |diff|")
    for shots in args.shots:
        picked = sample_demonstrations(splits.train.labels, shots, seed=0)
        demonstrations = [(splits.train.texts[i], splits.train.labels[i]) for i in picked]
        prompts = template.render(tokenizer, texts, verbalizer, demonstrations)
        speeds, difference = scoring_speeds(
            model, tokenizer, prompts, template.answers(verbalizer), batch_size=args.batch
        )
        one, batched, shared = speeds.values()
        rates = f"{one:>11.1f}/s  {batched:>7.1f}/s  {shared:>14.1f}/s"
        print(f"{shots:>5}  {rates}  {shared / one:>4.1f}x  {difference:.1e}")
    print("ratio: batched + shared prefix over one prompt at a time (prompts per second)")


if __name__ == "__main__":
    main()
