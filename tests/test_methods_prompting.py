"""Prompting SmolLM2 for classification: templates, verbalizers, batched scoring, parsing, calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metalib import zoo
from metalib.methods import prompting as pr

SENTIMENT = pr.Verbalizer((("negative",), ("positive",)))
PLAIN = pr.PromptTemplate(
    "statement", "Classify the movie review.", "{text}\nThe sentiment of this review is"
)
CHAT = pr.PromptTemplate("question", "Is this review positive or negative?", "Review: {text}", chat=True)
TEXTS = ["a fine film", "dull, lifeless and far too long", "I loved every minute of this wonderful comedy"]


@pytest.fixture(scope="module")
def lm():
    torch.manual_seed(0)
    return zoo.load_causal_lm("smollm2-135m-instruct", device="cpu")


def reference_scores(model, tokenizer, prompts, answers):
    """The definition, one prompt and one answer at a time: full forward pass, no cache, no padding."""
    rows = []
    for prompt in prompts:
        ids = tokenizer(prompt)["input_ids"]
        per_label = []
        for group in answers:
            total = []
            for answer in group:
                tail = tokenizer(answer, add_special_tokens=False)["input_ids"]
                with torch.no_grad():
                    lp = model(torch.tensor([ids + tail])).logits[0].log_softmax(-1)  # (T, V)
                total.append(sum(lp[len(ids) - 1 + j, t] for j, t in enumerate(tail)))
            per_label.append(torch.stack(total).logsumexp(0))
        rows.append(torch.stack(per_label))
    return torch.stack(rows)


@pytest.mark.parametrize("template", [PLAIN, CHAT], ids=["plain", "chat"])
def test_batched_scores_equal_one_at_a_time(lm, template):
    model, tokenizer = lm
    # Two words for one label, one of them two tokens long; a demonstration lengthens the shared prefix.
    verbalizer = pr.Verbalizer((("negative", "body part"), ("positive",)))
    prompts = template.render(tokenizer, TEXTS, verbalizer, demonstrations=[("great", 1)])
    answers = template.answers(verbalizer)
    assert any(len(tokenizer(a, add_special_tokens=False)["input_ids"]) > 1 for g in answers for a in g)
    expected = reference_scores(model, tokenizer, prompts, answers)
    for share_prefix, batch_size in [(True, 2), (False, 3)]:
        got = pr.score_labels(
            model, tokenizer, prompts, answers, batch_size=batch_size, share_prefix=share_prefix
        )
        assert got.shape == (len(TEXTS), 2)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("prefix", ["", "Say positive or negative.\n"], ids=["no-prefix", "prefix"])
def test_left_padding_single_token_answers(lm, prefix):
    """Rows of different lengths padded on the left, one-token answers (no continuation pass)."""
    model, tokenizer = lm
    prompts = [prefix + p for p in ("Hello", "The sentiment of the review 'a dull, long film' is", "awful")]
    answers = [[" negative"], [" positive"]]
    got = pr.score_labels(model, tokenizer, prompts, answers, batch_size=3)
    torch.testing.assert_close(got, reference_scores(model, tokenizer, prompts, answers), atol=1e-4, rtol=0)


def test_scores_follow_the_sentiment(lm):
    model, tokenizer = lm
    prompts = PLAIN.render(tokenizer, [TEXTS[2], TEXTS[1]], SENTIMENT)  # loved it / dull
    scores = pr.score_labels(model, tokenizer, prompts, PLAIN.answers(SENTIMENT))
    margin = scores[:, 1] - scores[:, 0]  # log p(positive) - log p(negative)
    assert margin[0] > margin[1] + 1.0


def test_plain_render_and_answers(lm):
    _, tokenizer = lm
    template = pr.PromptTemplate("t", "Rate it.", "Review: {text}\nSentiment:")
    (prompt,) = template.render(tokenizer, ["ok film"], SENTIMENT, demonstrations=[("great", 1), ("bad", 0)])
    assert prompt == (
        "Rate it.\n\nReview: great\nSentiment: positive\n\nReview: bad\nSentiment: negative\n\n"
        "Review: ok film\nSentiment:"
    )
    assert template.answers(SENTIMENT) == [[" negative"], [" positive"]]
    assert CHAT.answers(SENTIMENT) == [["negative"], ["positive"]]
    with pytest.raises(ValueError, match="text"):
        pr.PromptTemplate("bad", "", "no placeholder")
    with pytest.raises(TypeError):
        template.render(tokenizer, "one string", SENTIMENT)


def test_chat_render_uses_turns(lm):
    _, tokenizer = lm
    (prompt,) = CHAT.render(tokenizer, ["ok film"], SENTIMENT, demonstrations=[("great", 1)])
    assert prompt.endswith("<|im_start|>user\nReview: ok film<|im_end|>\n<|im_start|>assistant\n")
    assert "<|im_start|>assistant\npositive<|im_end|>" in prompt
    assert prompt.count(CHAT.instruction) == 1 and prompt.index(CHAT.instruction) < prompt.index("great")


def test_verbalizer_validation():
    with pytest.raises(ValueError, match="words"):
        pr.Verbalizer((("positive",),))
    with pytest.raises(ValueError, match="words"):
        pr.Verbalizer((("positive",), ()))
    assert pr.Verbalizer((("a",), ("b", "c"))).num_labels == 2


def test_sample_demonstrations_seeded_distinct_and_ordered():
    labels = [0, 1] * 10
    a, b = pr.sample_demonstrations(labels, 8, seed=1), pr.sample_demonstrations(labels, 8, seed=1)
    assert np.array_equal(a, b) and len(set(a.tolist())) == 8
    draws = {tuple(pr.sample_demonstrations(labels, 8, seed=s)) for s in range(5)}
    assert len(draws) == 5
    assert len(pr.sample_demonstrations(labels, 0, seed=0)) == 0
    with pytest.raises(ValueError, match="k=21"):
        pr.sample_demonstrations(labels, 21, seed=0)


def test_parse_answers_counts_failures():
    texts = ["Positive.", " negative\n\nThe movie", "The review is positive and appreciative",
             "I am not sure", "positive or negative", "positively charming"]  # fmt: skip
    parsed = pr.parse_answers(texts, SENTIMENT)
    assert parsed.tolist() == [1, 0, 1, -1, -1, -1]
    assert (parsed == -1).sum() == 3


def test_calibrate_matches_hand_computation():
    scores = torch.tensor([[0.7, 0.3], [0.8, 0.2]]).log()
    prior = torch.tensor([0.8, 0.2])
    calibrated = pr.calibrate(scores, prior)
    w_p = torch.tensor([0.7 / 0.8, 0.3 / 0.2])  # W p with W = diag(p_cf)^-1
    torch.testing.assert_close(calibrated[0], w_p / w_p.sum())
    torch.testing.assert_close(calibrated[1], torch.tensor([0.5, 0.5]))  # the prior itself → uniform
    assert calibrated[0].argmax() == 1 and scores[0].argmax() == 0  # the decision flips


def test_content_free_prior_and_generation(lm):
    model, tokenizer = lm
    prior = pr.content_free_prior(model, tokenizer, PLAIN, SENTIMENT)
    assert prior.shape == (2,) and abs(prior.sum().item() - 1) < 1e-5 and (prior > 0).all()
    prompts = CHAT.render(tokenizer, TEXTS[:2], SENTIMENT)
    together = pr.generate_answers(model, tokenizer, prompts, max_new_tokens=3, batch_size=2)
    alone = [pr.generate_answers(model, tokenizer, [p], max_new_tokens=3)[0] for p in prompts]
    assert together == alone and all(isinstance(t, str) and t for t in together)
    assert tokenizer.padding_side == "right"  # restored


def test_score_prompts_bundles_scores_prior_and_accuracies(lm):
    model, tokenizer = lm
    result = pr.score_prompts(model, tokenizer, PLAIN, TEXTS, SENTIMENT, batch_size=2)
    prompts = PLAIN.render(tokenizer, TEXTS, SENTIMENT)
    assert torch.allclose(result.scores, pr.score_labels(model, tokenizer, prompts, PLAIN.answers(SENTIMENT)))
    assert torch.allclose(result.prior, pr.content_free_prior(model, tokenizer, PLAIN, SENTIMENT))
    labels = [1, 0, 1]
    raw, calibrated = result.predictions(), result.predictions(calibrated=True)
    assert raw.tolist() == result.scores.argmax(1).tolist()
    assert calibrated.tolist() == pr.calibrate(result.scores, result.prior).argmax(1).tolist()
    assert result.accuracy(labels).mean == pytest.approx(np.mean(raw.numpy() == labels))
    assert result.accuracy(labels, calibrated=True).n == 3
    assert result.share(1) == pytest.approx(raw.float().mean().item())
    assert result[[0, 2]].scores.shape == (2, 2) and result[[0, 2]].prior is result.prior


def test_score_answer_sets_equals_scoring_each_verbalizer_alone(lm):
    model, tokenizer = lm
    prompts = PLAIN.render(tokenizer, TEXTS, SENTIMENT)
    two_words = pr.Verbalizer((("negative", "bad"), ("positive", "good")))  # shares words with SENTIMENT
    sets = {"plain": PLAIN.answers(SENTIMENT), "two words": PLAIN.answers(two_words)}
    together = pr.score_answer_sets(model, tokenizer, prompts, sets, batch_size=2)
    assert list(together) == ["plain", "two words"]
    for name, answers in sets.items():
        alone = pr.score_labels(model, tokenizer, prompts, answers, batch_size=2)
        assert together[name].shape == (3, 2) and torch.allclose(together[name], alone, atol=1e-5)


def test_in_context_study_draws_seeded_demonstrations_per_k(lm):
    model, tokenizer = lm
    pool = (["great fun", "a bore", "wonderful", "awful acting", "moving and funny"], [1, 0, 1, 0, 1])
    labels = [1, 0, 1]
    zero = pr.score_prompts(model, tokenizer, PLAIN, TEXTS, SENTIMENT)
    study = pr.in_context_study(
        model, tokenizer, PLAIN, TEXTS, labels, SENTIMENT, pool, (0, 2), draws=2, zero_shot=zero
    )
    assert study[["k", "draw"]].values.tolist() == [[0, 0], [2, 0], [2, 1]]
    assert np.isnan(study.loc[0, "last demo"]) and np.isnan(study.loc[0, "texts/s"])
    assert study.loc[0, "raw"] == zero.accuracy(labels).mean
    demos = [(pool[0][i], pool[1][i]) for i in pr.sample_demonstrations(pool[1], 2, seed=2001)]
    second = pr.score_prompts(model, tokenizer, PLAIN, TEXTS, SENTIMENT, demos)
    row = study.iloc[2]
    assert row["positive demos"] == sum(y for _, y in demos) and row["last demo"] == demos[-1][1]
    assert row["calibrated"] == second.accuracy(labels, calibrated=True).mean
    assert row["answers positive"] == second.share(1) and row["texts/s"] > 0
    prompt = PLAIN.render(tokenizer, TEXTS[:1], SENTIMENT, demos)[0]
    assert row["prompt tokens"] == len(tokenizer(prompt)["input_ids"]) > study.loc[0, "prompt tokens"]
    scored = pr.in_context_study(model, tokenizer, PLAIN, TEXTS, labels, SENTIMENT, pool, (0,), draws=3)
    assert len(scored) == 1 and scored.loc[0, "texts/s"] > 0 and scored.loc[0, "raw"] == study.loc[0, "raw"]


def test_template_sweep_is_score_prompts_per_template(lm):
    model, tokenizer = lm
    labels = [1, 0, 1]
    sweep = pr.template_sweep(model, tokenizer, [PLAIN, CHAT], TEXTS, labels, SENTIMENT, batch_size=2)
    assert list(sweep["template"]) == ["statement", "question"] and list(sweep["format"]) == ["plain", "chat"]
    for template, (_, row) in zip([PLAIN, CHAT], sweep.iterrows(), strict=True):
        alone = pr.score_prompts(model, tokenizer, template, TEXTS, SENTIMENT)
        assert row["raw"].mean == alone.accuracy(labels).mean and row["calibrated"].n == 3
        assert row["answers positive"] == alone.share(1)
        assert row["p_cf(positive)"] == pytest.approx(alone.prior[1].item(), abs=1e-6)


def test_scoring_speeds_time_three_ways_to_the_same_scores(lm):
    model, tokenizer = lm
    prompts = PLAIN.render(tokenizer, TEXTS, SENTIMENT)
    speeds, difference = pr.scoring_speeds(model, tokenizer, prompts, PLAIN.answers(SENTIMENT), batch_size=2)
    assert list(speeds) == ["one prompt at a time", "batched", "batched + shared prefix"]
    assert all(s > 0 for s in speeds.values()) and 0 <= difference < 1e-3


def test_generation_study_parses_and_compares_with_scoring(lm):
    model, tokenizer = lm
    labels = torch.tensor([1, 0, 1])
    row, outputs = pr.generation_study(model, tokenizer, CHAT, TEXTS, labels, SENTIMENT, max_new_tokens=4)
    assert outputs == pr.generate_answers(
        model, tokenizer, CHAT.render(tokenizer, TEXTS, SENTIMENT), max_new_tokens=4
    )
    parsed = pr.parse_answers(outputs, SENTIMENT)
    assert row["parse failures"] == int((parsed < 0).sum()) and row["failure rate"] == pytest.approx(
        row["parse failures"] / 3
    )
    assert row["accuracy, parsing (failure = wrong)"] == pytest.approx(np.mean(parsed == labels.numpy()))
    scores = pr.score_labels(
        model, tokenizer, CHAT.render(tokenizer, TEXTS, SENTIMENT), CHAT.answers(SENTIMENT)
    )
    assert row["accuracy, scoring"] == pytest.approx((scores.argmax(1) == labels).float().mean().item())
    given, _ = pr.generation_study(
        model, tokenizer, CHAT, TEXTS, labels, SENTIMENT, scores=torch.eye(2)[[0, 0, 0]], max_new_tokens=4
    )
    assert given["accuracy, scoring"] == pytest.approx(1 / 3) and row["generation, texts/s"] > 0
    nothing, _ = pr.generation_study(
        model, tokenizer, CHAT, TEXTS, labels, pr.Verbalizer((("zzqx",), ("qqzx",))), max_new_tokens=2
    )
    assert nothing["failure rate"] == 1.0 and np.isnan(nothing["parsed as positive"])


def test_summarize_in_context_reads_the_study_table():
    import pandas as pd

    study = pd.DataFrame(
        {
            "k": [0, 1, 1, 4, 4],
            "draw": [0, 0, 1, 0, 1],
            "positive demos": [0, 1, 0, 3, 1],
            "last demo": [float("nan"), 1, 0, 1, 0],
            "prompt tokens": [20, 40, 42, 100, 104],
            "answers positive": [0.6, 0.7, 0.2, 0.8, 0.1],
            "raw": [0.8, 0.7, 0.6, 0.75, 0.5],
            "calibrated": [0.8, 0.72, 0.7, 0.76, 0.66],
            "texts/s": [float("nan"), 10.0, 12.0, 4.0, 6.0],
        }
    )
    summary = pr.summarize_in_context(study)
    assert summary["zero"] == 0.8 and summary["k_max"] == 4 and summary["kmax_raw"] == pytest.approx(0.625)
    assert summary["kmax_cal"] == pytest.approx(0.71) and (summary["kmax_min"], summary["kmax_max"]) == (
        0.5,
        0.75,
    )
    assert summary["best_shot"] == pytest.approx(0.65) and summary["shot_means_range"] == pytest.approx(0.025)
    assert summary["max_spread"] == pytest.approx(0.25) and summary["tokens_kmax"] == 102
    assert summary["speed_one"] == 11.0 and summary["speed_kmax"] == 5.0 and summary["tokens_zero"] == 20
    assert (summary["worst_k"], summary["worst_positive"], summary["worst_raw"]) == (4, 1, 0.5)
    assert (summary["worst_cal"], summary["worst_answers_positive"]) == (0.66, 0.1)
    with pytest.raises(ValueError, match="k = 0"):
        pr.summarize_in_context(study[study["k"] > 0])
