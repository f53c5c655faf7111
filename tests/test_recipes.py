"""The models the book builds into the cache (metalib.recipes), on tiny recipes."""

import dataclasses
import json

import pytest
import torch

from metalib import recipes, zoo
from metalib.methods import pretraining as pt
from metalib.recipes import distilled as ds
from metalib.recipes import protonet_head as ph
from metalib.recipes import teacher
from metalib.recipes import tiny_bert as tb


def test_recipes_per_profile_and_the_cached_tiny_bert(tmp_path, monkeypatch):
    assert pt.PretrainingRecipe.for_profile("quick").steps < pt.PretrainingRecipe.for_profile("full").steps
    with pytest.raises(ValueError, match="profile"):
        pt.PretrainingRecipe.for_profile("huge")
    recipe = pt.PretrainingRecipe(vocab_size=800, hidden_size=32, steps=6, eval_every=3, held_out_size=40)
    config = recipe.bert_config(800)
    assert (config.hidden_size, config.num_attention_heads, config.intermediate_size) == (32, 2, 128)
    monkeypatch.setenv("METALIB_CACHE", str(tmp_path))
    monkeypatch.setattr(pt.PretrainingRecipe, "for_profile", classmethod(lambda cls, profile=None: recipe))
    path = tb.tiny_bert_path()
    run = tb.tiny_bert()
    assert run.path == path and run.recipe == recipe and run.train_tokens > 1_000_000
    assert [row["step"] for row in run.history.eval_rows] == [0, 3, 6]
    mtime = (path / "run.json").stat().st_mtime
    assert tb.tiny_bert_path() == path and (path / "run.json").stat().st_mtime == mtime  # not retrained
    encoder, tok = recipes.load_encoder("tiny-bert-pretrained", device="cpu")
    torch.testing.assert_close(
        encoder.embeddings.word_embeddings.weight, run.model.bert.embeddings.word_embeddings.weight
    )
    assert tok.vocab_size == 800
    torch.manual_seed(0)
    scratch, _ = recipes.load_encoder(
        "tiny-bert-scratch", num_labels=2, device="cpu", hidden_dropout_prob=0.1
    )
    assert scratch.config.hidden_dropout_prob == 0.1 and scratch.config.num_labels == 2
    assert not torch.equal(
        scratch.bert.embeddings.word_embeddings.weight, run.model.bert.embeddings.word_embeddings.weight
    )
    other = tb.tiny_bert_path(dataclasses.replace(recipe, steps=3))  # another recipe: another entry
    assert other != path


def test_distillation_recipes_per_profile():
    quick, full = (
        ds.SentenceDistillationRecipe.for_profile("quick"),
        ds.SentenceDistillationRecipe.for_profile("full"),
    )
    assert quick.steps < full.steps and quick.n_texts < 11_000 and full.n_texts is None
    with pytest.raises(ValueError, match="profile"):
        ds.SentenceDistillationRecipe.for_profile("huge")


def test_cached_distilled_tiny_bert(tmp_path, monkeypatch):
    monkeypatch.setenv("METALIB_CACHE", str(tmp_path))
    pretraining = pt.PretrainingRecipe(
        vocab_size=800, hidden_size=32, steps=4, eval_every=2, held_out_size=40
    )
    recipe = ds.SentenceDistillationRecipe(steps=6, batch_size=16, n_texts=48)
    monkeypatch.setattr(
        pt.PretrainingRecipe, "for_profile", classmethod(lambda cls, profile=None: pretraining)
    )
    monkeypatch.setattr(
        ds.SentenceDistillationRecipe, "for_profile", classmethod(lambda cls, profile=None: recipe)
    )
    path = ds.distilled_tiny_bert_path()
    info = json.loads((path / "run.json").read_text())
    assert info["n_texts"] == 48 and info["recipe"]["steps"] == 6 and info["train_rows"]
    mtime = (path / "run.json").stat().st_mtime
    assert ds.distilled_tiny_bert_path() == path and (path / "run.json").stat().st_mtime == mtime  # cached
    distilled, tokenizer = recipes.load_encoder("tiny-bert-distilled", device="cpu")
    pretrained, _ = recipes.load_encoder("tiny-bert-pretrained", device="cpu")
    assert tokenizer.vocab_size == 800 and distilled.config.hidden_size == 32
    assert not torch.equal(
        distilled.embeddings.word_embeddings.weight, pretrained.embeddings.word_embeddings.weight
    )  # it starts from chapter 1's tiny BERT and moves
    assert ds.distilled_tiny_bert_path(ds.SentenceDistillationRecipe(steps=3, n_texts=16)) != path


def test_cached_sentiment_classifier(tmp_path, monkeypatch):
    quick, full = teacher.ClassifierRecipe.for_profile("quick"), teacher.ClassifierRecipe.for_profile("full")
    assert quick.n_train < full.n_train
    assert teacher.ClassifierRecipe.for_profile("gpu").n_train is None  # all labels
    with pytest.raises(ValueError, match="profile"):
        teacher.ClassifierRecipe.for_profile("huge")
    recipe = teacher.ClassifierRecipe(n_train=48, epochs=1, batch_size=16, max_length=32)
    monkeypatch.setenv("METALIB_CACHE", str(tmp_path))
    monkeypatch.setattr(
        teacher.ClassifierRecipe, "for_profile", classmethod(lambda cls, profile=None: recipe)
    )
    path = teacher.sentiment_classifier_path(progress=False)
    info = json.loads((path / "run.json").read_text())
    assert info["recipe"]["n_train"] == 48 and info["test_accuracy"]["n"] == 998
    assert 0.3 < info["test_accuracy"]["mean"] < 0.8 and len(info["eval_rows"]) == 1
    mtime = (path / "run.json").stat().st_mtime
    assert teacher.sentiment_classifier_path() == path and (path / "run.json").stat().st_mtime == mtime
    model, tokenizer = recipes.load_encoder("minilm-l6-sentiment", num_labels=2, device="cpu")
    batch = tokenizer(["a triumph", "a mess"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert model(**batch).logits.shape == (2, 2)
    head = model.classifier.weight
    again, _ = recipes.load_encoder("minilm-l6-sentiment", num_labels=2, device="cpu")
    assert torch.equal(again.classifier.weight, head)  # the trained head is loaded, not re-initialised


def test_build_encoder_knows_only_the_books_models(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="not a model the book builds"):
        recipes.build_encoder("minilm-l6")
    assert recipes.encoder_source("minilm-l6") == zoo.encoder_source("minilm-l6")
    model, _ = recipes.load_encoder("minilm-l6", device="cpu")  # other names go to zoo unchanged
    assert model.config.hidden_size == 384
    with pytest.raises(OSError, match="metalib.recipes.load_encoder"):
        zoo.load_encoder("tiny-bert-pretrained")  # zoo knows no built model, and says where to look


def test_cached_protonet_head_never_sees_a_meta_test_class(tmp_path, monkeypatch):
    assert ph.ProtoNetHeadRecipe.for_profile("quick").steps < ph.ProtoNetHeadRecipe.for_profile("full").steps
    recipe = ph.ProtoNetHeadRecipe(per_class=(20, 20, 1), steps=4, eval_every=2, val_episodes=5)
    monkeypatch.setenv("METALIB_CACHE", str(tmp_path))
    seen = []
    real_train = ph.train_protonet

    def spy(features, labels, classes, config, val):
        seen.append((set(classes), {c for row in val.classes for c in row}))
        return real_train(features, labels, classes, config, val)

    monkeypatch.setattr(ph, "train_protonet", spy)
    path = ph.protonet_head_path(recipe)
    info = json.loads((path / "run.json").read_text())
    (train_classes, val_classes), test_classes = seen[0], set(info["splits"]["test"])
    assert train_classes == set(info["splits"]["train"]) and val_classes <= set(info["splits"]["val"])
    assert not (train_classes | val_classes) & test_classes
    assert info["best_step"] in (0, 2, 4) and 0 <= info["val_accuracy"] <= 1
    head = ph.protonet_head(recipe)
    assert ph.protonet_head_path(recipe) == path and len(seen) == 1  # built once, then loaded
    x = torch.nn.functional.normalize(torch.randn(3, 384), dim=1)
    assert head(x).shape == (3, 384) and not head.training
