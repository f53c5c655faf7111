"""InfoNCE against a hand computation; zero-shot classification by label descriptions with MiniLM."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from metalib import zoo
from metalib.embeddings import embed_texts
from metalib.methods import contrastive as co


def test_info_nce_matches_hand_computation():
    q = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    k = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    # similarities: q0.k0 = 0.8, q0.k1 = 0.0, q1.k0 = 0.96, q1.k1 = 0.8; tau = 0.5
    row0 = -math.log(math.exp(0.8 / 0.5) / (math.exp(0.8 / 0.5) + math.exp(0.0)))
    row1 = -math.log(math.exp(0.8 / 0.5) / (math.exp(0.96 / 0.5) + math.exp(0.8 / 0.5)))
    assert co.info_nce(q, k, temperature=0.5).item() == pytest.approx((row0 + row1) / 2, abs=1e-6)
    # the other direction: columns of the similarity matrix
    col0 = -math.log(math.exp(0.8 / 0.5) / (math.exp(0.8 / 0.5) + math.exp(0.96 / 0.5)))
    col1 = -math.log(math.exp(0.8 / 0.5) / (math.exp(0.0) + math.exp(0.8 / 0.5)))
    expected = ((row0 + row1) / 2 + (col0 + col1) / 2) / 2
    assert co.info_nce(q, k, temperature=0.5, symmetric=True).item() == pytest.approx(expected, abs=1e-6)


def test_info_nce_with_label_targets_is_zero_shot_cross_entropy():
    torch.manual_seed(0)
    texts = F.normalize(torch.randn(6, 4), dim=1)
    labels = F.normalize(torch.randn(3, 4), dim=1)
    targets = torch.tensor([0, 1, 2, 2, 1, 0])
    probabilities = co.zero_shot_probabilities(texts, labels, temperature=0.1)
    expected = -probabilities[torch.arange(6), targets].log().mean()
    assert co.info_nce(texts, labels, temperature=0.1, targets=targets).item() == pytest.approx(
        expected.item()
    )
    assert torch.allclose(probabilities.sum(1), torch.ones(6))
    assert torch.equal(
        probabilities.argmax(1), co.zero_shot_probabilities(texts, labels, temperature=3).argmax(1)
    )


def test_info_nce_is_low_for_matched_pairs_and_validates():
    torch.manual_seed(0)
    x = F.normalize(torch.randn(16, 8), dim=1)
    matched = co.info_nce(x, x, temperature=0.1)
    shuffled = co.info_nce(x, x[torch.randperm(16)], temperature=0.1)
    assert matched < 0.5 < math.log(16) - 1 < shuffled
    with pytest.raises(ValueError, match="temperature"):
        co.info_nce(x, x, temperature=0)
    with pytest.raises(ValueError, match="paired"):
        co.info_nce(x, x[:3])
    with pytest.raises(ValueError, match="paired"):
        co.info_nce(x[:3], x, targets=torch.tensor([2, 1, 0]), symmetric=True)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        co.info_nce(x, x[:, :4])


def test_label_embeddings_average_descriptions_and_classify_sentiment():
    model, tokenizer = zoo.load_encoder("minilm-l6", device="cpu")
    descriptions = [["a negative movie review", "a bad movie"], ["a positive movie review", "a good movie"]]
    labels = co.label_embeddings(model, tokenizer, descriptions)
    assert labels.shape == (2, 384)
    torch.testing.assert_close(labels.norm(dim=1), torch.ones(2))
    parts = embed_texts(model, tokenizer, descriptions[0])
    torch.testing.assert_close(labels[0], F.normalize(parts.mean(0), dim=0))
    texts = embed_texts(
        model, tokenizer, ["a dreadful, boring mess", "I loved it, a moving and beautiful film"]
    )
    assert co.zero_shot_probabilities(texts, labels).argmax(1).tolist() == [0, 1]
    with pytest.raises(ValueError, match="description"):
        co.label_embeddings(model, tokenizer, [["x"], []])
