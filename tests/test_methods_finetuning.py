"""Fine-tuning techniques: one training function for every variant, robustness scoring, paired
comparison over seeds, the optuna wrapper; and the multi-task model's embeddings input (for FGM)."""

from __future__ import annotations

import functools
import random

import numpy as np
import pytest
import torch
from transformers import BertModel

from metalib import augment, zoo
from metalib.adversarial import fgm_forward
from metalib.methods import finetuning as ftn
from metalib.methods import transfer as tr
from metalib.methods.pretraining import train_wordpiece

TEXTS = ["great fine loved", "dull tedious mess", "we loved it great", "lifeless dull ends"] * 8
LABELS = [1, 0, 1, 0] * 8
AUX = (["a small dog", "to run fast", "a red house", "to eat well"] * 4, [0, 1, 0, 1] * 4)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    """A 1-layer tiny BERT and its WordPiece tokenizer saved like a hub model: any
    ``zoo.load_encoder`` name can be such a directory."""
    tokenizer = train_wordpiece(TEXTS + AUX[0], vocab_size=120)
    torch.manual_seed(0)
    encoder = BertModel(zoo.tiny_bert_config(len(tokenizer), num_hidden_layers=1))
    path = tmp_path_factory.mktemp("tiny")
    encoder.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_recipe_replace_keeps_the_rest():
    base = ftn.Recipe()
    changed = base.replace(dropout=0.3, fgm_epsilon=0.01)
    assert (changed.dropout, changed.fgm_epsilon, changed.lr, changed.epochs) == (
        0.3,
        0.01,
        base.lr,
        base.epochs,
    )
    assert base.dropout == 0.1  # frozen: the original is unchanged


def test_mean_pool_classifier_from_embeddings_equals_from_ids(encoder_dir):
    encoder, tokenizer = zoo.load_encoder(encoder_dir, device="cpu")
    model = tr.MeanPoolClassifier(encoder, (2, 3), normalize=False, dropout=0.0).eval()
    batch = tr.pad_collator(tokenizer)([tr.TokenizedTexts(tokenizer, TEXTS[:3])[i] for i in range(3)])
    embeds = model.get_input_embeddings()(batch["input_ids"])  # (B, T, H)
    by_ids = model(**batch)
    rest = {k: v for k, v in batch.items() if k != "input_ids"}
    by_embeds = model(inputs_embeds=embeds, **rest)
    assert torch.allclose(by_ids.logits, by_embeds.logits, atol=1e-6)
    no_mask = model(input_ids=batch["input_ids"][:1, :3])  # no attention mask: no padding
    assert no_mask.logits.shape == (1, 2)
    with pytest.raises(ValueError, match="exactly one"):
        model(input_ids=batch["input_ids"], inputs_embeds=embeds)


def test_fgm_forward_trains_a_mean_pool_classifier(encoder_dir):
    encoder, tokenizer = zoo.load_encoder(encoder_dir, device="cpu")
    model = tr.MeanPoolClassifier(encoder, (2,), normalize=False, dropout=0.0).train()
    data = tr.TokenizedTexts(tokenizer, TEXTS[:4], LABELS[:4])
    batch = tr.pad_collator(tokenizer)([data[i] for i in range(4)])
    clean = model(**batch).loss
    step = fgm_forward(epsilon=0.5)(model, batch)
    assert step.loss > clean  # clean + adversarial loss
    step.loss.backward()
    assert model.get_input_embeddings().weight.grad is not None


def test_train_classifier_learns_with_every_variant(encoder_dir):
    recipe = ftn.Recipe(lr=3e-3, epochs=12, batch_size=8, dropout=0.0)
    trainer, tokenizer = ftn.train_classifier(encoder_dir, (TEXTS, LABELS), recipe, seed=0)
    assert ftn.correct(trainer, tokenizer, (TEXTS[:4], LABELS[:4])).tolist() == [True] * 4
    assert len(trainer.unwrapped_model.heads) == 1 and trainer.history.train_rows
    again, _ = ftn.train_classifier(encoder_dir, (TEXTS, LABELS), recipe, seed=0)
    for a, b in zip(trainer.unwrapped_model.parameters(), again.unwrapped_model.parameters(), strict=True):
        assert torch.equal(a, b)  # one seed, one result
    multi, _ = ftn.train_classifier(
        encoder_dir, (TEXTS, LABELS), recipe.replace(epochs=1), seed=0, aux=AUX, aux_num_labels=3
    )
    assert [head.out_features for head in multi.unwrapped_model.heads] == [2, 3]
    adversarial, _ = ftn.train_classifier(
        encoder_dir, (TEXTS, LABELS), recipe.replace(fgm_epsilon=0.01), seed=0
    )
    assert ftn.correct(adversarial, tokenizer, (TEXTS[:4], LABELS[:4])).all()
    dropout_model = ftn.train_classifier(
        encoder_dir, (TEXTS[:8], LABELS[:8]), recipe.replace(dropout=0.3, epochs=1)
    )[0]
    assert dropout_model.unwrapped_model.encoder.config.hidden_dropout_prob == 0.3


def test_robustness_pairs_rows_and_is_deterministic(encoder_dir):
    recipe = ftn.Recipe(lr=3e-3, epochs=2, batch_size=8, dropout=0.0)
    trainer, tokenizer = ftn.train_classifier(encoder_dir, (TEXTS, LABELS), recipe, seed=0)
    swap = functools.partial(augment.word_swap, n_swaps=1)
    scores = ftn.robustness(
        trainer, tokenizer, (TEXTS, LABELS), {"same": lambda text, rng: text, "swap": swap}, seed=3
    )
    assert list(scores) == ["clean", "same", "swap"]
    assert all(v.shape == (len(TEXTS),) and v.dtype == bool for v in scores.values())
    assert np.array_equal(scores["clean"], scores["same"])
    again = ftn.robustness(trainer, tokenizer, (TEXTS, LABELS), {"swap": swap}, seed=3)
    assert np.array_equal(scores["swap"], again["swap"])
    rng = random.Random(3)  # the perturbed texts are the ones threaded through one generator
    expected = ftn.correct(trainer, tokenizer, ([swap(t, rng=rng) for t in TEXTS], LABELS))
    assert np.array_equal(scores["swap"], expected)


def test_compare_gives_means_and_paired_differences():
    table = ftn.compare(
        {"plain": [0.70, 0.72, 0.74], "new": [0.71, 0.73, 0.75], "worse": [0.6, 0.7, 0.8]}, "plain"
    )
    assert table.loc["plain", "diff"] == 0 and table.loc["plain", "seeds"] == 3
    assert table.loc["new", "diff"] == pytest.approx(0.01)
    assert table.loc["new", "diff_low"] == pytest.approx(0.01)  # the same gain every seed: no spread
    assert table.loc["new", "low"] < table.loc["plain", "mean"] < table.loc["new", "high"]  # means overlap
    assert table.loc["worse", "diff_low"] < 0 < table.loc["worse", "diff_high"]
    with pytest.raises(KeyError):
        ftn.compare({"a": [1.0]}, "b")
    with pytest.raises(ValueError, match="pair"):
        ftn.compare({"a": [1.0, 2.0], "b": [1.0]}, "a")


def test_technique_study_pairs_runs_by_seed_and_counts_trainings(encoder_dir):
    recipe = ftn.Recipe(lr=3e-3, epochs=2, batch_size=8, dropout=0.0)

    def rows(seed):
        return TEXTS[seed:], LABELS[seed:]

    study = ftn.TechniqueStudy(
        encoder_dir, rows, (TEXTS, LABELS), (TEXTS[:8], LABELS[:8]), seeds=(0, 1),
        perturbations={"same": lambda text, rng: text},
    )  # fmt: skip
    study.run("plain", recipe, robust=True)
    study.run("dropout", recipe.replace(dropout=0.3))
    assert study.trainings == 4 and set(study.seconds) == {"plain", "dropout"}
    plain = study.runs["plain"]
    assert len(plain) == 2 and set(plain[0]) == {"clean", "same", "val"}
    assert "same" not in study.runs["dropout"][0] and np.array_equal(plain[0]["clean"], plain[0]["same"])
    trainer, tokenizer = ftn.train_classifier(encoder_dir, rows(1), recipe, seed=1)
    assert np.array_equal(plain[1]["clean"], ftn.correct(trainer, tokenizer, (TEXTS, LABELS)))
    table = study.compare(["plain", "dropout"])
    assert table.loc["plain", "diff"] == 0 and table.loc["dropout", "seeds"] == 2
    assert table.loc["dropout", "mean"] == np.mean([s["clean"].mean() for s in study.runs["dropout"]])
    assert study.validation_accuracy(recipe, 1) == plain[1]["val"].mean() and study.trainings == 5
    with pytest.raises(KeyError, match="run them first"):
        study.compare(["plain", "never run"])


def test_read_differences_counts_only_intervals_that_exclude_zero():
    table = ftn.compare(
        {"plain": [0.70, 0.72, 0.74], "up": [0.73, 0.75, 0.77], "down": [0.6, 0.62, 0.64],
         "noise": [0.6, 0.7, 0.8]}, "plain",
    )  # fmt: skip
    reading = ftn.read_differences(table)
    assert reading.ahead == ["up"] and reading.behind == ["down"]
    assert reading.verdicts == [
        "-", "ahead of the plain fine-tune", "behind the plain fine-tune",
        "not distinguishable from the plain fine-tune",
    ]  # fmt: skip
    assert (
        reading.sentence.startswith("Ahead of the plain fine-tune") and "behind it: down" in reading.sentence
    )
    quiet = ftn.read_differences(table.loc[["plain", "noise"]], what="the baseline")
    assert quiet.ahead == quiet.behind == [] and "None of the 1 variants" in quiet.sentence
    assert "largest mean difference is 0.020" in quiet.sentence and "the baseline" in quiet.sentence
    single = ftn.read_differences(ftn.compare({"plain": [0.7], "up": [0.9]}, "plain"))
    assert single.ahead == [] and single.sentence.startswith("With one seed")
    assert single.verdicts[1] == "+0.200 against the plain fine-tune, from one seed (no interval)"
    ax = ftn.plot_differences(table)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["up", "down", "noise"]
    assert ax.get_xlabel() == "test accuracy minus the plain fine-tune's"


def test_tune_maximises_and_plots():
    import matplotlib

    matplotlib.use("Agg")

    def objective(trial):
        x = trial.suggest_float("x", -3.0, 3.0)
        return -((x - 1.0) ** 2)

    study = ftn.tune(objective, n_trials=15, seed=0)
    assert len(study.trials) == 15 and abs(study.best_params["x"] - 1.0) < 1.0
    again = ftn.tune(objective, n_trials=15, seed=0)
    assert again.best_params == study.best_params  # seeded sampler
    started = ftn.tune(objective, n_trials=3, seed=0, start={"x": 1.0})
    assert started.trials[0].params == {"x": 1.0} and started.best_params == {"x": 1.0}  # the incumbent wins
    ax = ftn.plot_study(study, baseline=-1.0)
    best = ax.lines[1].get_ydata()
    assert len(best) == 15 and np.all(np.diff(best) >= 0) and best[-1] == study.best_value


def test_verdict_reads_the_interval():
    assert ftn.verdict(0.02, 0.01, 0.03).startswith("ahead of the plain fine-tune by 0.020")
    assert ftn.verdict(-0.02, -0.03, -0.01, what="X").startswith("behind X by 0.020")
    assert ftn.verdict(0.0, -0.01, 0.01).startswith("not distinguishable")
    assert (
        ftn.verdict(0.02, 0.02, 0.02, n=1)
        == "+0.020 against the plain fine-tune, from one seed (no interval)"
    )
