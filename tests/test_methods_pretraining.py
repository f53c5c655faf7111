"""Pretraining pieces: corpus (no evaluation text), tokenizer, masking, and the two forwards."""

import math

import pytest
import torch
from transformers import BertForPreTraining, GPT2LMHeadModel

from metalib import data, zoo
from metalib.methods import pretraining as pt


@pytest.fixture(scope="module")
def corpus():
    return pt.pretraining_corpus(seed=0)


@pytest.fixture(scope="module")
def tokenizer(corpus):
    return pt.train_wordpiece(corpus.texts("train")[:20_000], vocab_size=2000)


def test_split_gloss():
    assert pt.split_gloss('move fast; "He ran"; "run home"') == ("move fast", ["He ran", "run home"])
    assert pt.split_gloss("a domestic animal") == ("a domestic animal", [])


def test_corpus_holds_no_validation_or_test_review_and_balanced_pairs(corpus):
    splits = data.rotten_tomatoes(seed=0)
    texts = {s.a for s in corpus.train + corpus.held_out}
    assert not texts & (set(splits.val.texts) | set(splits.test.texts))
    assert set(splits.train.texts) <= texts  # every training review is in, without its label
    assert len(corpus.held_out) == round(0.05 * (len(corpus.train) + len(corpus.held_out)))
    pairs = [s for s in corpus.train if s.b is not None]
    share_next = sum(s.is_next for s in pairs) / len(pairs)
    assert len(pairs) > 25_000 and 0.48 < share_next < 0.52
    assert {s.is_next for s in corpus.train if s.b is None} == {-1}
    assert corpus.texts("held_out")[0] in {s.a if s.b is None else f"{s.a} {s.b}" for s in corpus.held_out}


def test_wordpiece_tokenizer_encodes_pairs_with_segment_ids(tokenizer):
    assert tokenizer.vocab_size == 2000
    again = pt.train_wordpiece(pt.pretraining_corpus(seed=0).texts("train")[:20_000], vocab_size=2000)
    # the trainer breaks ties arbitrarily; the canonical numbering makes the ids reproducible too
    assert again.get_vocab() == tokenizer.get_vocab()
    pieces = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])][5:]
    assert pieces == sorted(pieces)
    assert [tokenizer.convert_tokens_to_ids(t) for t in pt.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    enc = tokenizer("a dog", "it barks", return_token_type_ids=True)
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and tokens[-1] == "[SEP]"
    assert enc["token_type_ids"] == [0] * (tokens.index("[SEP]") + 1) + [1] * (
        len(tokens) - tokens.index("[SEP]") - 1
    )
    assert (
        tokenizer.decode(tokenizer("Unbelievable!")["input_ids"], skip_special_tokens=True) == "unbelievable!"
    )


def test_encoded_segments_and_masking(corpus, tokenizer):
    segments = pt.EncodedSegments(tokenizer, corpus.train[:3000], max_length=32)
    assert len(segments) == 3000 and max(len(r["input_ids"]) for r in segments.rows) <= 32
    assert {r["next_sentence_label"] for r in segments.rows} == {-100, 0, 1}
    batch = pt.mlm_collator(tokenizer, seed=0)([segments[i] for i in range(3000)])
    real = (batch["attention_mask"] == 1) & (batch["input_ids"] != tokenizer.cls_token_id)
    chosen = batch["labels"] != -100
    assert 0.12 < chosen.sum() / real.sum() < 0.18  # about 15% of tokens are prediction targets
    as_mask = (batch["input_ids"] == tokenizer.mask_token_id)[chosen].float().mean()
    unchanged = (batch["input_ids"] == batch["labels"])[chosen].float().mean()
    assert 0.77 < as_mask < 0.83 and 0.08 < unchanged < 0.13  # 80% [MASK], 10% kept (+ random hits)
    again = pt.mlm_collator(tokenizer, seed=0)([segments[i] for i in range(3000)])
    assert torch.equal(batch["input_ids"], again["input_ids"])  # seeded: a fixed held-out masking
    shares = pt.masking_shares(batch, tokenizer)
    assert 0.12 < shares["chosen"] < 0.18 and shares["replaced by [MASK]"] == pytest.approx(as_mask.item())
    assert shares["left unchanged"] == pytest.approx(unchanged.item())
    parts = shares["replaced by [MASK]"] + shares["replaced by a random token"] + shares["left unchanged"]
    assert parts == pytest.approx(1.0) and 0.07 < shares["replaced by a random token"] < 0.13


def test_masked_lm_forward_matches_the_full_model_loss(corpus, tokenizer):
    torch.manual_seed(0)
    model = BertForPreTraining(zoo.tiny_bert_config(tokenizer.vocab_size)).eval()
    segments = pt.EncodedSegments(tokenizer, corpus.train[:64], max_length=32)
    batch = pt.mlm_collator(tokenizer, seed=1)([segments[i] for i in range(64)])
    with torch.no_grad():
        ours = pt.masked_lm_forward(model, batch)
        reference = model(**{k: v for k, v in batch.items() if k != "next_sentence_label"})
    mlm = torch.nn.functional.cross_entropy(reference.prediction_logits.transpose(1, 2), batch["labels"])
    pairs = batch["next_sentence_label"] != -100
    nsp = torch.nn.functional.cross_entropy(
        reference.seq_relationship_logits[pairs], batch["next_sentence_label"][pairs]
    )
    torch.testing.assert_close(ours.loss, mlm + nsp, rtol=1e-5, atol=1e-5)
    stats = ours.logits  # (B, 5)
    assert stats.shape == (64, 5)
    assert stats[:, 1].sum() == (batch["labels"] != -100).sum() and stats[:, 4].sum() == pairs.sum()
    metrics = {name: fn(stats, None) for name, fn in pt.masked_lm_metrics().items()}
    assert metrics["mlm_loss"] == pytest.approx(mlm.item(), rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(torch.exp(mlm).item(), rel=1e-4)
    assert 0 <= metrics["mlm_accuracy"] <= 1 and 0 <= metrics["nsp_accuracy"] <= 1


def test_causal_lm_forward_matches_transformers_loss(corpus, tokenizer):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(zoo.tiny_gpt_config(tokenizer.vocab_size)).eval()
    batch = tokenizer(corpus.texts()[:16], padding=True, truncation=True, max_length=32, return_tensors="pt")
    batch = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        ours = pt.causal_lm_forward(model, batch)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        reference = model(**batch, labels=labels).loss
    torch.testing.assert_close(ours.loss, reference, rtol=1e-5, atol=1e-5)
    metrics = {name: fn(ours.logits, None) for name, fn in pt.causal_lm_metrics().items()}
    assert metrics["token_loss"] == pytest.approx(reference.item(), rel=1e-5)


@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_pretrain_lowers_the_held_out_loss_from_step_zero(corpus, tokenizer, objective):
    torch.manual_seed(0)
    if objective == "mlm":
        model = BertForPreTraining(zoo.tiny_bert_config(tokenizer.vocab_size, num_hidden_layers=1))
        segments = corpus.train[:2000]
    else:
        model = GPT2LMHeadModel(zoo.tiny_gpt_config(tokenizer.vocab_size, n_layer=1))
        segments = [pt.Segment(text) for text in corpus.texts("train")[:2000]]
    train_set = pt.EncodedSegments(tokenizer, segments, max_length=32)
    held_out = pt.EncodedSegments(tokenizer, corpus.held_out[:256], max_length=32)
    history = pt.pretrain(
        model, tokenizer, train_set, held_out, objective=objective, steps=60, eval_every=30, progress=False
    )
    metric = "val_mlm_loss" if objective == "mlm" else "val_token_loss"
    assert [row["step"] for row in history.eval_rows] == [0, 30, 60]
    first, last = history.eval_rows[0][metric], history.eval_rows[-1][metric]
    assert first == pytest.approx(math.log(tokenizer.vocab_size), rel=0.05)  # untrained: near uniform
    assert last < 0.9 * first  # mlm 7.63 -> 6.54, clm 7.6 -> 6.3 when written
    with pytest.raises(ValueError, match="objective"):
        pt.pretrain(model, tokenizer, train_set, held_out, objective="nsp", steps=1)
    if objective == "mlm":  # the held-out batches pretrain() scored: masked the same way every time
        first = pt.held_out_batches(tokenizer, held_out, "mlm", seed=0)
        assert torch.equal(first[0]["labels"], pt.held_out_batches(tokenizer, held_out, "mlm")[0]["labels"])
        assert not torch.equal(
            first[0]["labels"], pt.held_out_batches(tokenizer, held_out, seed=1)[0]["labels"]
        )


def test_fill_mask_and_sample_text(tokenizer):
    torch.manual_seed(0)
    bert = BertForPreTraining(zoo.tiny_bert_config(tokenizer.vocab_size, num_hidden_layers=1)).train()
    guesses = pt.fill_mask(bert, tokenizer, ["a [MASK] film", "the dog [MASK] loudly"], top_k=3)
    assert len(guesses) == 2 and all(len(g) == 3 and all(isinstance(t, str) for t in g) for g in guesses)
    assert bert.training  # the mode is restored
    with pytest.raises(ValueError, match="exactly one"):
        pt.fill_mask(bert, tokenizer, ["no mask here"])
    gpt = GPT2LMHeadModel(zoo.tiny_gpt_config(tokenizer.vocab_size, n_layer=1))
    first = pt.sample_text(gpt, tokenizer, ["the movie"], max_new_tokens=5, seed=0)
    assert first == pt.sample_text(gpt, tokenizer, ["the movie"], max_new_tokens=5, seed=0)
    assert first[0].startswith("the movie") and len(first[0].split()) > 2


def test_training_flops_counts_layers_and_the_used_output_projection(tokenizer):
    model = BertForPreTraining(zoo.tiny_bert_config(tokenizer.vocab_size))
    embeddings = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    layers = zoo.count_parameters(model) - embeddings
    assert pt.training_flops(model, 1000, 0.0) == 6 * 1000 * layers
    assert pt.training_flops(model, 1000, 0.15) == pytest.approx(6 * 1000 * (layers + 0.15 * 2000 * 128))


def test_compute_study_tabulates_loss_against_compute_per_model_size(corpus, tokenizer):
    train_set = pt.EncodedSegments(tokenizer, corpus.train[:500], max_length=32)
    held_out = pt.EncodedSegments(tokenizer, corpus.held_out[:64], max_length=32)
    recipe = pt.PretrainingRecipe(batch_size=16, lr=3e-3)
    study = pt.compute_study(recipe, tokenizer, train_set, held_out, (16, 32), steps=8, tokens_per_step=300.0)
    assert list(study.columns) == ["hidden", "parameters", "step", "flops", "held-out MLM loss"]
    assert study.step.tolist() == [0, 2, 4, 6, 8] * 2  # four evaluations after the one at step 0
    small, big = (study[study.hidden == h] for h in (16, 32))
    assert small.parameters.iloc[0] < big.parameters.iloc[0]
    assert small.flops.iloc[0] == 0 and small.flops.is_monotonic_increasing
    assert big.flops.iloc[-1] > small.flops.iloc[-1]  # same steps, more compute for the larger model
    assert (
        study.groupby("hidden")["held-out MLM loss"].last()
        < study.groupby("hidden")["held-out MLM loss"].first()
    ).all()
    again = pt.compute_study(recipe, tokenizer, train_set, held_out, (16,), steps=8, tokens_per_step=300.0)
    assert again["held-out MLM loss"].tolist() == small["held-out MLM loss"].tolist()  # seeded
