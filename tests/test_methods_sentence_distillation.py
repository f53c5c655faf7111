"""Tests of metalib.methods.sentence_distillation: the cosine objective, its training loop, and the
cached distilled tiny BERT."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertModel

from metalib import zoo
from metalib.methods import pretraining as pt
from metalib.methods import sentence_distillation as sd
from metalib.train import TrainConfig
from tests.test_methods_distillation import WordTokenizer, texts_and_teacher, tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny ops: 2 threads are slower (see conftest)


def test_vector_loss_measures_direction_only():
    torch.manual_seed(0)
    a = torch.randn(5, 6)
    assert sd.vector_loss(a, 2.5 * a).item() == pytest.approx(0.0, abs=1e-6)
    assert sd.vector_loss(a, -a).item() == pytest.approx(2.0, abs=1e-6)
    x, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert sd.vector_loss(x, y).item() == pytest.approx(1.0)


def test_distill_sentence_vectors_learns_the_teacher_directions():
    texts, _ = texts_and_teacher(96)
    tokenizer = WordTokenizer()
    torch.manual_seed(1)
    words = sorted({w for t in texts for w in t.split()})
    direction = torch.randn(len(words), 6)  # the "teacher": a sentence vector per bag of words
    teacher = torch.stack([sum(direction[words.index(w)] for w in t.split()) for t in texts])
    encoder = tiny_bert(2, cls=BertModel, seed=1)
    before = encoder.embeddings.word_embeddings.weight.detach().clone()
    train = TrainConfig(epochs=20, lr=3e-3, progress=False, device="cpu")
    trainer = sd.distill_sentence_vectors(encoder, tokenizer, texts, teacher, train, batch_size=16)
    losses = [row["loss"] for row in trainer.history.train_rows]
    assert losses[-1] < 0.5 * losses[0], losses
    assert not torch.equal(encoder.embeddings.word_embeddings.weight, before)  # trained in place
    with pytest.raises(ValueError, match="teacher vectors"):
        sd.distill_sentence_vectors(encoder, tokenizer, texts, teacher[:5], train)


def test_recipes_per_profile():
    quick, full = (
        sd.SentenceDistillationRecipe.for_profile("quick"),
        sd.SentenceDistillationRecipe.for_profile("full"),
    )
    assert quick.steps < full.steps and quick.n_texts < 11_000 and full.n_texts is None
    with pytest.raises(ValueError, match="profile"):
        sd.SentenceDistillationRecipe.for_profile("huge")


def test_cached_distilled_tiny_bert(tmp_path, monkeypatch):
    monkeypatch.setenv("METALIB_CACHE", str(tmp_path))
    pretraining = pt.PretrainingRecipe(
        vocab_size=800, hidden_size=32, steps=4, eval_every=2, held_out_size=40
    )
    recipe = sd.SentenceDistillationRecipe(steps=6, batch_size=16, n_texts=48)
    monkeypatch.setattr(
        pt.PretrainingRecipe, "for_profile", classmethod(lambda cls, profile=None: pretraining)
    )
    monkeypatch.setattr(
        sd.SentenceDistillationRecipe, "for_profile", classmethod(lambda cls, profile=None: recipe)
    )
    path = sd.distilled_tiny_bert_path()
    info = json.loads((path / "run.json").read_text())
    assert info["n_texts"] == 48 and info["recipe"]["steps"] == 6 and info["train_rows"]
    mtime = (path / "run.json").stat().st_mtime
    assert sd.distilled_tiny_bert_path() == path and (path / "run.json").stat().st_mtime == mtime  # cached
    distilled, tokenizer = zoo.load_encoder("tiny-bert-distilled", device="cpu")
    pretrained, _ = zoo.load_encoder("tiny-bert-pretrained", device="cpu")
    assert tokenizer.vocab_size == 800 and distilled.config.hidden_size == 32
    assert not torch.equal(
        distilled.embeddings.word_embeddings.weight, pretrained.embeddings.word_embeddings.weight
    )  # it starts from chapter 1's tiny BERT and moves
    assert sd.distilled_tiny_bert_path(sd.SentenceDistillationRecipe(steps=3, n_texts=16)) != path
