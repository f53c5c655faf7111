"""Pretraining pieces: corpus (no evaluation text), tokenizer, masking, and the two forwards."""

import pytest
import torch
from transformers import BertForPreTraining, GPT2LMHeadModel

from metalib import data, train, zoo
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


def test_a_few_steps_of_pretraining_lower_the_held_out_loss(corpus, tokenizer):
    torch.manual_seed(0)
    model = BertForPreTraining(zoo.tiny_bert_config(tokenizer.vocab_size, num_hidden_layers=1))
    train_set = pt.EncodedSegments(tokenizer, corpus.train[:2000], max_length=32)
    held_out = pt.EncodedSegments(tokenizer, corpus.held_out[:256], max_length=32)
    held_out_batches = [pt.mlm_collator(tokenizer, seed=1)(held_out.rows)]
    trainer = train.Trainer(
        model,
        train.TrainConfig(max_steps=60, lr=3e-3, eval_every=30, progress=False, device="cpu"),
        forward=pt.masked_lm_forward,
        metrics=pt.masked_lm_metrics(),
    )
    before = trainer.evaluate(held_out_batches)["mlm_loss"]
    loader = train.make_loader(train_set, 32, shuffle=True, collate_fn=pt.mlm_collator(tokenizer))
    history = trainer.fit(loader, held_out_batches)
    assert history.eval_rows[-1]["val_mlm_loss"] < 0.9 * before  # 7.63 -> 6.54 when written
