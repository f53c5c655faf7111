"""FGM adversarial training: the perturbation, the forward in eval and training, a Trainer step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import BertForSequenceClassification

from metalib import zoo
from metalib.adversarial import fgm_forward, fgm_perturbation
from metalib.train import TrainConfig, Trainer, default_forward, make_loader

VOCAB = 50


def _model(dropout: float = 0.0) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = zoo.tiny_bert_config(
        VOCAB, num_hidden_layers=1, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout
    )
    return BertForSequenceClassification(config)


def _batch(n: int = 8, length: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    """Real tokens use ids 5..29 (ids 30..49 never occur); padding is id 0 at the end of each row."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, length + 1, (n,), generator=g)
    mask = (torch.arange(length) < lengths[:, None]).long()  # (B, T)
    ids = torch.randint(5, 30, (n, length), generator=g) * mask
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": torch.zeros_like(ids),
        "labels": torch.randint(0, 2, (n,), generator=g),
    }


def test_perturbation_has_norm_epsilon_over_real_tokens_and_zero_on_padding():
    grad = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    r = fgm_perturbation(grad, mask, epsilon=0.5)
    assert r.shape == grad.shape and not r.requires_grad
    torch.testing.assert_close(r.flatten(1).norm(dim=1), torch.full((3,), 0.5))
    assert (r[mask == 0] == 0).all()
    real = mask.bool()
    # the direction is the gradient's, on real positions
    for b in range(3):
        g = grad[b][real[b]].flatten()
        torch.testing.assert_close(r[b][real[b]].flatten(), 0.5 * g / g.norm())
    zero = fgm_perturbation(torch.zeros(1, 2, 3), torch.ones(1, 2), 1.0)
    assert torch.equal(zero, torch.zeros(1, 2, 3))  # no gradient, no move (and no NaN)


def test_eval_mode_and_unlabelled_batches_are_the_plain_forward():
    model, batch = _model(dropout=0.1).eval(), _batch()
    forward = fgm_forward(epsilon=1.0)
    with torch.no_grad():
        ours, plain = forward(model, batch), default_forward(model, batch)
    torch.testing.assert_close(ours.logits, plain.logits)
    torch.testing.assert_close(ours.loss, plain.loss)
    model.train()
    unlabelled = {k: v for k, v in batch.items() if k != "labels"}
    out = forward(model, unlabelled)
    assert out.loss is None and out.labels is None and out.logits.shape == (8, 2)


def test_training_loss_is_clean_plus_adversarial_and_reaches_the_embeddings():
    model, batch = _model().train(), _batch()  # no dropout: passes are deterministic
    out = fgm_forward(epsilon=1.0)(model, batch)
    clean = default_forward(model, batch)
    torch.testing.assert_close(out.logits, clean.logits)
    # the adversarial loss by hand
    emb = model.get_input_embeddings()(batch["input_ids"])
    rest = {k: batch[k] for k in ("attention_mask", "token_type_ids")}
    loss = F.cross_entropy(model(inputs_embeds=emb, **rest).logits, batch["labels"])
    (grad,) = torch.autograd.grad(loss, emb)
    r = fgm_perturbation(grad, batch["attention_mask"], 1.0)
    adv = F.cross_entropy(model(inputs_embeds=emb + r, **rest).logits, batch["labels"])
    torch.testing.assert_close(out.loss, clean.loss + adv, rtol=1e-5, atol=1e-6)
    assert adv > clean.loss  # the perturbation is adversarial: it raises the loss

    out.loss.backward()
    fgm_grad = model.get_input_embeddings().weight.grad.clone()
    used = torch.zeros(VOCAB, dtype=torch.bool)
    used[batch["input_ids"][batch["attention_mask"].bool()]] = True
    assert (fgm_grad[used].norm(dim=1) > 0).all()
    assert (fgm_grad[~used] == 0).all()  # ids 30..49 and the padding id get nothing
    model.zero_grad()
    clean.loss.backward()
    clean_grad = model.get_input_embeddings().weight.grad
    assert not torch.allclose(fgm_grad, clean_grad)  # the adversarial pass adds its own gradient


def test_frozen_embeddings_and_a_custom_logits_function():
    model, batch = _model().train(), _batch()
    model.get_input_embeddings().weight.requires_grad_(False)
    seen = {}

    def logits_fn(m, inputs_embeds, rest):
        seen["keys"] = sorted(rest)
        return m(inputs_embeds=inputs_embeds, **rest).logits

    out = fgm_forward(epsilon=1.0, forward_logits=logits_fn)(model, batch)
    assert seen["keys"] == ["attention_mask", "token_type_ids"]
    assert out.loss > 2 * default_forward(model, batch).loss.detach()
    with pytest.raises(ValueError, match="epsilon"):
        fgm_forward(epsilon=-1.0)


def test_trainer_steps_with_fgm_change_the_weights():
    model = _model(dropout=0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = [{k: v[i] for k, v in _batch(32, seed=1).items()} for i in range(32)]
    trainer = Trainer(
        model,
        TrainConfig(max_steps=3, lr=1e-3, log_every=1, progress=False, device="cpu"),
        forward=fgm_forward(epsilon=0.5),
    )
    history = trainer.fit(make_loader(rows, batch_size=8, shuffle=True), make_loader(rows, batch_size=16))
    after = trainer.unwrapped_model.state_dict()
    for name in ("bert.embeddings.word_embeddings.weight", "classifier.weight"):
        assert not torch.equal(before[name], after[name]), name
    assert len(history.train_rows) == 3 and set(history.evals.columns) >= {"val_loss", "val_accuracy"}
