"""Tests of metalib.methods.sentence_distillation: the cosine objective, its training loop, and the
cached distilled tiny BERT."""

from __future__ import annotations

import pytest
import torch
from transformers import BertModel

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
