"""Transfer-learning helpers: tokenised datasets, nested stratified subsets, learning curves, multi-task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset
from transformers import BertModel
from transformers.modeling_outputs import SequenceClassifierOutput

from metalib import zoo
from metalib.embeddings import mean_pool
from metalib.evaluate import mean_estimate
from metalib.methods import transfer as tr
from metalib.methods.pretraining import train_wordpiece
from metalib.train import TrainConfig, Trainer, default_forward, make_loader

TEXTS = [
    "a fine film with a great cast",
    "dull and lifeless",
    "the plot is about a man who loses his job and finds a dog",
    "we loved it",
    "an overlong and tedious mess of a movie that never ends",
    "great",
]


@pytest.fixture(scope="module")
def tokenizer():
    """A small WordPiece tokenizer (no token type ids)."""
    return train_wordpiece(TEXTS * 10, vocab_size=200)


@pytest.fixture(scope="module")
def bert_tokenizer():
    """all-MiniLM-L6-v2's BERT tokenizer (returns token type ids); the model itself is not loaded."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(zoo.minilm_path()))


def test_tokenized_texts_truncate_without_padding(tokenizer, bert_tokenizer):
    data = tr.TokenizedTexts(tokenizer, TEXTS, labels=[1, 0, 1, 1, 0, 1], max_length=8)
    assert len(data) == 6 and set(data[0]) == {"input_ids", "attention_mask", "labels"}
    lengths = data.lengths()
    assert lengths.max() == 8 and lengths.min() < 8  # truncated, not padded
    assert data[1]["input_ids"] == tokenizer(TEXTS[1])["input_ids"] and data[1]["labels"] == 0
    assert data[5]["attention_mask"] == [1] * lengths[5]
    with_types = tr.TokenizedTexts(bert_tokenizer, TEXTS, tasks=[0, 1, 0, 1, 0, 1])
    assert set(with_types[0]) == {"input_ids", "attention_mask", "token_type_ids", "task"}
    with pytest.raises(ValueError, match="labels"):
        tr.TokenizedTexts(tokenizer, TEXTS, labels=[1])
    with pytest.raises(TypeError):
        tr.TokenizedTexts(tokenizer, "one string")
    assert len(tr.TokenizedTexts(tokenizer, [])) == 0


def test_pad_collator_pads_to_the_longest_row_and_passes_task_and_labels(bert_tokenizer):
    data = tr.TokenizedTexts(bert_tokenizer, TEXTS[:3], labels=[1, 0, 1], tasks=[0, 2, 1])
    batch = tr.pad_collator(bert_tokenizer)([data[i] for i in range(3)])
    longest = int(data.lengths().max())
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "task"}
    assert batch["input_ids"].shape == (3, longest)
    assert batch["task"].tolist() == [0, 2, 1] and batch["task"].dtype == torch.int64
    assert batch["labels"].tolist() == [1, 0, 1]
    assert batch["attention_mask"].sum(1).tolist() == data.lengths().tolist()
    assert (batch["input_ids"][batch["attention_mask"] == 0] == bert_tokenizer.pad_token_id).all()


def test_length_quantile_is_the_smallest_length_covering_q(tokenizer):
    texts = [" ".join(["great"] * k) for k in range(1, 101)]  # 1..100 words: 3..102 tokens
    lengths = np.array([len(ids) for ids in tokenizer(texts)["input_ids"]])
    for q in (0.5, 0.9, 0.99, 1.0):
        length = tr.length_quantile(tokenizer, texts, q)
        assert (lengths <= length).mean() >= q and (lengths <= length - 1).mean() < q
    assert tr.length_quantile(tokenizer, texts, 0.9) == 92
    with pytest.raises(ValueError, match="q must"):
        tr.length_quantile(tokenizer, texts, 0.0)


def test_stratified_subset_keeps_proportions_and_is_nested():
    labels = np.random.default_rng(0).choice(3, size=2000, p=[0.7, 0.25, 0.05])
    share = np.bincount(labels) / len(labels)
    full = tr.stratified_subset(labels, None, seed=4)
    assert sorted(full.tolist()) == list(range(2000))  # every row once
    for n in (3, 8, 16, 64, 256, 1999):
        subset = tr.stratified_subset(labels, n, seed=4)
        assert np.array_equal(subset, full[:n])  # nested: a prefix of the same order
        counts = np.bincount(labels[subset], minlength=3)
        assert (counts >= 1).all() and np.abs(counts - n * share).max() <= 1.5
    assert np.array_equal(tr.stratified_subset(labels, 5000, seed=4), full)
    other = tr.stratified_subset(labels, 64, seed=5)
    assert set(other.tolist()) != set(full[:64].tolist())  # another seed, another draw
    two = tr.stratified_subset([0] * 50 + [1] * 2, 2, seed=0)
    assert sorted(np.array([0] * 50 + [1] * 2)[two].tolist()) == [0, 1]  # rare class present
    assert len(tr.stratified_subset(labels, 0, seed=0)) == 0
    with pytest.raises(ValueError, match="n must"):
        tr.stratified_subset(labels, -1, seed=0)


def test_learning_curve_summary_and_plot():
    calls = []

    def run(n: int, seed: int) -> float:
        calls.append((n, seed))
        return 0.5 + 0.1 * np.log2(n) / 10 + 0.01 * seed

    curve = tr.learning_curve(run, sizes=[16, 64, 256], seeds=[0, 1, 2], progress=False)
    assert list(curve.columns) == ["n", "seed", "accuracy"] and len(curve) == 9
    assert calls == [(n, s) for n in (16, 64, 256) for s in (0, 1, 2)]
    summary = tr.summarize_curve(curve)
    assert summary.index.tolist() == [16, 64, 256]
    assert list(summary.columns) == ["mean", "low", "high", "seeds"]
    expected = mean_estimate(curve.loc[curve.n == 64, "accuracy"].tolist())
    row = summary.loc[64]
    assert (row["mean"], row["low"], row["high"], row["seeds"]) == pytest.approx(
        (expected.mean, expected.low, expected.high, 3)
    )
    one_seed = tr.summarize_curve(curve[curve.seed == 0])
    assert (one_seed["low"] == one_seed["high"]).all()

    other = curve.assign(accuracy=curve.accuracy - 0.05)
    ax = tr.plot_learning_curves({"fine-tune": curve, "probe": other}, baseline=0.55)
    assert ax.get_xscale() == "log"
    lines = ax.get_lines()
    assert len(lines) == 3 and lines[-1].get_ydata()[0] == 0.55  # two methods, one baseline
    assert list(lines[0].get_ydata()) == pytest.approx(summary["mean"].tolist())
    assert len(ax.collections) == 2  # one shaded interval per method
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["fine-tune", "probe"]


def _multitask(vocab_size: int, num_labels=(2, 3, 4), **kwargs) -> tr.MeanPoolClassifier:
    torch.manual_seed(0)
    config = zoo.tiny_bert_config(vocab_size, num_hidden_layers=1, hidden_dropout_prob=0.0)
    encoder = BertModel(config, add_pooling_layer=False)
    return tr.MeanPoolClassifier(encoder, num_labels, normalize=False, **kwargs)


def _batch(tokenizer, tasks, labels):
    data = tr.TokenizedTexts(tokenizer, TEXTS[: len(tasks)], labels=labels, tasks=tasks)
    return tr.pad_collator(tokenizer)([data[i] for i in range(len(data))])


def test_multitask_loss_is_each_rows_own_task_cross_entropy(tokenizer):
    model = _multitask(len(tokenizer), task_weights=[1.0, 0.5, 2.0]).eval()
    batch = _batch(tokenizer, tasks=[0, 1, 2, 1, 0, 2], labels=[1, 2, 3, 0, 0, 1])
    out = model(**batch)
    assert isinstance(out, SequenceClassifierOutput) and out.logits.shape == (6, 2)
    assert out.task_logits.shape == (6, 4)
    # by hand
    hidden = model.encoder(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state
    pooled = mean_pool(hidden, batch["attention_mask"])
    weights = [1.0, 0.5, 2.0]
    losses = []
    for i, (t, y) in enumerate(zip(batch["task"].tolist(), batch["labels"].tolist(), strict=True)):
        own = model.heads[t](pooled[i : i + 1])
        losses.append(weights[t] * F.cross_entropy(own, torch.tensor([y])))
        torch.testing.assert_close(out.task_logits[i, : own.shape[1]], own[0])
        assert (out.task_logits[i, own.shape[1] :] == torch.finfo(torch.float32).min).all()
    torch.testing.assert_close(out.loss, torch.stack(losses).mean())
    torch.testing.assert_close(out.logits, model.heads[0](pooled))  # main head on every row
    # no task: every row is the main task
    plain = {k: v for k, v in batch.items() if k != "task"}
    plain["labels"] = torch.tensor([1, 0, 1, 1, 0, 1])
    torch.testing.assert_close(model(**plain).loss, F.cross_entropy(model(**plain).logits, plain["labels"]))


def test_one_task_loss_has_the_gradients_of_the_multitask_loss(tokenizer):
    batch = _batch(tokenizer, tasks=[0] * 6, labels=[1, 0, 1, 1, 0, 1])
    grads = []
    for num_labels in ((2,), (2, 3)):  # the plain mean cross-entropy, then the per-row weighted mean
        model = _multitask(len(tokenizer), num_labels=num_labels).eval()  # eval: no dropout
        out = model(**batch)
        assert (out.task_logits is None) == (num_labels == (2,))
        out.loss.backward()
        grads.append([p.grad for p in model.encoder.parameters()] + [model.head.weight.grad])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
    assert len(_multitask(len(tokenizer), num_labels=(2,)).heads) == 1


def test_multitask_gradient_reaches_only_the_heads_in_the_batch(tokenizer):
    model = _multitask(len(tokenizer)).train()
    model(**_batch(tokenizer, tasks=[1, 1, 1], labels=[2, 0, 1])).loss.backward()
    grads = [head.weight.grad for head in model.heads]
    assert grads[0] is None and grads[2] is None and grads[1].abs().sum() > 0
    assert model.encoder.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    model(**_batch(tokenizer, tasks=[0, 2, 0], labels=[1, 3, 0])).loss.backward()
    assert model.heads[1].weight.grad is None
    assert model.heads[0].weight.grad.abs().sum() > 0 and model.heads[2].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="outside its task"):
        model(**_batch(tokenizer, tasks=[0, 1], labels=[2, 0]))  # task 0 has 2 classes
    with pytest.raises(ValueError, match="task ids"):
        model(**_batch(tokenizer, tasks=[0, 3], labels=[0, 0]))
    with pytest.raises(ValueError, match="task_weights"):
        _multitask(len(tokenizer), task_weights=[1.0])


def test_multitask_trains_with_the_default_forward_and_predicts_the_main_task(tokenizer):
    model = _multitask(len(tokenizer), num_labels=(2, 3))
    main = tr.TokenizedTexts(tokenizer, TEXTS, labels=[1, 0, 1, 1, 0, 1], tasks=[0] * 6)
    aux = tr.TokenizedTexts(tokenizer, TEXTS, labels=[0, 1, 2, 0, 1, 2], tasks=[1] * 6)
    collate = tr.pad_collator(tokenizer)
    loader = make_loader(ConcatDataset([main, aux]), 4, shuffle=True, collate_fn=collate)
    head = model.heads[1].weight.detach().clone()
    trainer = Trainer(model, TrainConfig(max_steps=3, lr=1e-3, progress=False, device="cpu"))
    trainer.fit(loader)
    assert not torch.equal(head, model.heads[1].weight)  # the auxiliary head learned
    batch = collate([main[i] for i in range(6)])
    assert default_forward(model, batch).logits.shape == (6, 2)
    test = tr.TokenizedTexts(tokenizer, TEXTS, labels=[1, 0, 1, 1, 0, 1])  # no task field
    logits = trainer.predict(make_loader(test, 4, collate_fn=collate))
    assert logits.shape == (6, 2)
    assert 0 <= trainer.evaluate(make_loader(test, 4, collate_fn=collate))["accuracy"] <= 1


def test_fine_tune_learns_a_separable_task_and_predicts_in_input_order(tokenizer):
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(zoo.tiny_bert_config(tokenizer.vocab_size, num_hidden_layers=1))
    texts = ["great fine loved", "dull tedious mess", "we loved it great", "lifeless dull ends"] * 8
    labels = [1, 0, 1, 0] * 8
    config = TrainConfig(epochs=15, lr=3e-3, monitor="val_accuracy", mode="max", progress=False, device="cpu")
    trainer = tr.fine_tune(model, tokenizer, (texts, labels), (texts[:8], labels[:8]), config, batch_size=8)
    assert trainer.history.best("val_accuracy", "max")["val_accuracy"] == 1.0
    logits = tr.predict_logits(trainer, tokenizer, ["dull tedious", "great loved", "dull"])
    assert logits.shape == (3, 2) and logits.argmax(-1).tolist() == [0, 1, 0]
    assert len(trainer.history.eval_rows) == 15  # one evaluation per epoch
    no_val = tr.fine_tune(
        model, tokenizer, (texts, labels), None, TrainConfig(epochs=1, progress=False), group_by_length=True
    )
    assert no_val.history.eval_rows == [] and len(no_val.history.train_rows) == 1


def test_steps_for_and_linear_probe():
    assert tr.steps_for(16, 16, epochs=3, min_steps=60) == 60
    assert tr.steps_for(1024, 16, epochs=2, min_steps=60) == 128
    assert tr.steps_for(17, 16, epochs=1) == 2
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8))
    y = (x[:, 0] + 0.1 * rng.normal(size=400) > 0).astype(int)
    probe = tr.linear_probe(x[:200], y[:200], x[200:300], y[200:300], cs=(1e-4, 10.0))
    assert probe.C == 10.0  # C=1e-4 shrinks the weights to nothing: worse on validation
    assert probe.score(x[300:], y[300:]) > 0.9


def test_mean_pool_classifier_from_a_probe_predicts_like_the_probe(tokenizer):
    from sklearn.linear_model import LogisticRegression

    from metalib.embeddings import embed_texts

    torch.manual_seed(0)
    config = zoo.tiny_bert_config(len(tokenizer), num_hidden_layers=1, hidden_dropout_prob=0.0)
    encoder = BertModel(config, add_pooling_layer=False).eval()
    features = embed_texts(encoder, tokenizer, TEXTS, max_length=32).numpy()  # unit length, (6, H)
    labels = [1, 0, 1, 1, 0, 1]
    batch = _batch(tokenizer, tasks=[0] * 6, labels=labels)
    batch.pop("task")
    for y in (labels, [0, 1, 2, 2, 1, 0]):  # binary (one weight row) and three classes
        probe = LogisticRegression(C=10.0, max_iter=1000).fit(features, y)
        model = tr.MeanPoolClassifier(encoder, num_labels=len(set(y))).init_head_from_probe(probe).eval()
        out = model(**{**batch, "labels": torch.tensor(y)})
        expected = torch.tensor(probe.predict_proba(features), dtype=torch.float32)
        torch.testing.assert_close(out.logits.softmax(-1), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, torch.tensor(y)))
    with pytest.raises(ValueError, match="do not fit"):
        tr.MeanPoolClassifier(encoder, num_labels=4).init_head_from_probe(probe)
    with pytest.raises(ValueError, match="num_labels"):
        tr.MeanPoolClassifier(encoder, num_labels=1)
    unnormalised = tr.MeanPoolClassifier(encoder, num_labels=2, normalize=False).eval()
    pooled = mean_pool(
        encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0],
        batch["attention_mask"],
    )
    torch.testing.assert_close(unnormalised(**batch).logits, unnormalised.head(pooled))
    assert unnormalised.get_input_embeddings() is encoder.get_input_embeddings()
    assert {id(p) for p in unnormalised.parameters()} >= {
        id(unnormalised.head.weight),
        id(encoder.embeddings.word_embeddings.weight),
    }
