"""Tests of metalib.methods.distillation and metalib.latency: the KD loss, layer-copy students,
training on stored teacher logits, side-by-side latency."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification, BertModel

from metalib.latency import compare_latency
from metalib.methods.distillation import (
    DistillationConfig,
    SoftTargets,
    distill,
    kd_forward,
    kd_loss,
    layer_copy_student,
)
from metalib.train import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny ops: 2 threads are slower (see conftest)


def tiny_bert(layers: int = 4, cls=BertForSequenceClassification, seed: int = 0):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=2,
    )
    return cls(config).eval()


# ------------------------------------------------------------------------------------------ kd_loss
def test_kd_loss_equals_hand_computation():
    s = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    t = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    y = torch.tensor([1, 2])
    T, alpha = 3.0, 0.3
    kl = 0.0
    for i in range(2):
        p_t = [math.exp(v / T) for v in t[i].tolist()]
        p_s = [math.exp(v / T) for v in s[i].tolist()]
        p_t = [v / sum(p_t) for v in p_t]
        p_s = [v / sum(p_s) for v in p_s]
        kl += sum(a * math.log(a / b) for a, b in zip(p_t, p_s, strict=True))
    kl /= 2
    ce = -sum(math.log(math.exp(s[i, y[i]].item()) / s[i].exp().sum().item()) for i in range(2)) / 2
    expected = alpha * T * T * kl + (1 - alpha) * ce
    assert kd_loss(s, t, y, temperature=T, alpha=alpha).item() == pytest.approx(expected, rel=1e-5)


def test_kd_loss_extremes():
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 3), torch.randn(8, 3), torch.randint(0, 3, (8,))
    assert torch.allclose(kd_loss(s, t, y, temperature=4.0, alpha=0.0), F.cross_entropy(s, y))
    assert torch.allclose(kd_loss(s, t, None, temperature=2.0, alpha=0.1), kd_loss(s, t, y, 2.0, 1.0))
    assert kd_loss(t, t, None, temperature=2.0).item() == pytest.approx(0.0, abs=1e-6)  # equal: KL = 0


def test_t_squared_keeps_gradient_scale():
    """Soft-term gradients shrink as 1/T^2 at high T; the T^2 factor makes them nearly T-independent."""
    torch.manual_seed(0)
    s, t = torch.randn(64, 2) * 0.5, torch.randn(64, 2) * 0.5

    def grad_norm(temperature: float, scaled: bool) -> float:
        x = s.clone().requires_grad_(True)
        loss = kd_loss(x, t, None, temperature=temperature)
        (loss if scaled else loss / temperature**2).backward()
        return x.grad.norm().item()

    assert grad_norm(8.0, scaled=True) == pytest.approx(grad_norm(16.0, scaled=True), rel=0.05)
    assert grad_norm(8.0, scaled=False) == pytest.approx(4 * grad_norm(16.0, scaled=False), rel=0.05)
    # soft-term value: exactly T^2 times the KL of the softened distributions
    kl = F.kl_div(F.log_softmax(s / 3, -1), F.softmax(t / 3, -1), reduction="batchmean")
    assert kd_loss(s, t, None, temperature=3.0).item() == pytest.approx(9 * kl.item(), rel=1e-5)


def test_kd_loss_gradcheck_and_teacher_gets_no_gradient():
    torch.manual_seed(0)
    s = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 3, (5,))

    def f(x):  # kd_loss computes in float32; gradcheck in float64 needs a float64 path
        return kd_loss(x.float(), t.float(), y, 2.0, 0.7).double()

    analytic = torch.autograd.grad(kd_loss(s.float(), t.float(), y, 2.0, 0.7), s)[0]
    eps, numeric = 1e-3, torch.zeros_like(s)
    for idx in range(s.numel()):
        d = torch.zeros_like(s).view(-1)
        d[idx] = eps
        d = d.view_as(s)
        numeric.view(-1)[idx] = (f(s + d) - f(s - d)).item() / (2 * eps)
    assert torch.allclose(analytic.double(), numeric, atol=1e-3)
    kd_loss(s, t, y, 2.0, 0.7).backward()
    assert t.grad is None


def test_config_validation():
    with pytest.raises(ValueError, match="temperature"):
        DistillationConfig(temperature=0.0)
    with pytest.raises(ValueError, match="alpha"):
        kd_loss(torch.zeros(2, 2), torch.zeros(2, 2), None, alpha=1.5)
    with pytest.raises(ValueError, match="shape"):
        kd_loss(torch.zeros(2, 2), torch.zeros(2, 3))


# ------------------------------------------------------------------------------- layer_copy_student
@pytest.mark.parametrize("cls", [BertForSequenceClassification, BertModel])
def test_layer_copy_student_copies_every_other_layer(cls):
    teacher = tiny_bert(6, cls)
    student = layer_copy_student(teacher)
    assert type(student) is cls and student.config.num_hidden_layers == 3
    assert teacher.config.num_hidden_layers == 6  # the teacher's config is untouched
    t_state, s_state = teacher.state_dict(), student.state_dict()
    for key, value in s_state.items():
        if ".layer." in key:
            i = int(key.split(".layer.")[1].split(".")[0])
            source = key.replace(f".layer.{i}.", f".layer.{2 * i}.")
        else:
            source = key
        assert torch.equal(value, t_state[source]), key
    n_layer = sum(v.numel() for k, v in t_state.items() if ".layer.0." in k)
    assert sum(v.numel() for v in t_state.values()) - sum(v.numel() for v in s_state.values()) == 3 * n_layer


def test_layer_copy_student_explicit_layers_and_random_init():
    teacher = tiny_bert(4)
    student = layer_copy_student(teacher, layers=[3, 1])
    assert torch.equal(
        student.bert.encoder.layer[0].output.dense.weight, teacher.bert.encoder.layer[3].output.dense.weight
    )
    torch.manual_seed(1)
    fresh = layer_copy_student(teacher, random_init=True)
    assert fresh.config.num_hidden_layers == 2
    assert not torch.equal(
        fresh.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight
    )
    with pytest.raises(ValueError, match="layers"):
        layer_copy_student(teacher, layers=[4])


# --------------------------------------------------------------------------------- training with KD
class WordTokenizer:
    """Just enough of a tokenizer for TokenizedTexts and DataCollatorWithPadding: one id per word."""

    model_input_names = ["input_ids", "attention_mask"]
    padding_side = "right"
    pad_token_id = 0
    pad_token = "[PAD]"

    def __call__(self, texts, truncation=True, max_length=64):
        ids = [[1 + sum(map(ord, w)) % 40 for w in t.split()][:max_length] for t in texts]  # fixed ids
        return {"input_ids": ids, "attention_mask": [[1] * len(i) for i in ids]}

    def pad(self, features, padding=True, max_length=None, pad_to_multiple_of=None, return_tensors="pt"):
        width = max(len(f["input_ids"]) for f in features)
        out = {
            "input_ids": torch.tensor(
                [f["input_ids"] + [0] * (width - len(f["input_ids"])) for f in features]
            ),
            "attention_mask": torch.tensor(
                [f["attention_mask"] + [0] * (width - len(f["input_ids"])) for f in features]
            ),
        }
        for key in features[0]:
            if key not in out:
                out[key] = torch.tensor([f[key] for f in features])
        return out


def texts_and_teacher(n: int = 64):
    words = ["good", "great", "fine", "bad", "awful", "dull", "film", "plot", "the", "a"]
    g = torch.Generator().manual_seed(0)
    texts = [" ".join(words[j] for j in torch.randint(0, 10, (6,), generator=g).tolist()) for _ in range(n)]
    score = torch.tensor([sum(w in t.split() for w in ("good", "great", "fine")) - sum(
        w in t.split() for w in ("bad", "awful", "dull")
    ) for t in texts], dtype=torch.float32)  # fmt: skip
    teacher_logits = torch.stack([-score, score], dim=1)  # (N, 2)
    return texts, teacher_logits


def test_soft_targets_rows_and_kd_forward():
    texts, logits = texts_and_teacher(8)
    from metalib.methods.transfer import TokenizedTexts

    rows = SoftTargets(TokenizedTexts(WordTokenizer(), texts, [0] * 8), logits)
    assert rows[3]["teacher_logits"] == logits[3].tolist() and rows[3]["labels"] == 0
    batch = WordTokenizer().pad([rows[i] for i in range(4)])
    model = tiny_bert(2)
    out = kd_forward(DistillationConfig(2.0, 0.5))(model, batch)
    expected = kd_loss(out.logits, batch["teacher_logits"], batch["labels"], 2.0, 0.5)
    assert out.loss.item() == pytest.approx(expected.item())
    plain = kd_forward(DistillationConfig())(model, {k: v for k, v in batch.items() if k != "teacher_logits"})
    assert plain.loss.item() == pytest.approx(F.cross_entropy(plain.logits, batch["labels"]).item())
    with pytest.raises(ValueError, match="teacher logits"):
        SoftTargets(rows.rows, logits[:3])
    head = torch.nn.Linear(4, 2)  # tuple batches: (features, teacher logits, labels)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 1, 0, 1, 0])
    out = kd_forward(DistillationConfig(3.0, 0.25))(head, (x, logits[:6], y))
    assert out.loss.item() == pytest.approx(kd_loss(head(x), logits[:6], y, 3.0, 0.25).item())


def test_distill_lowers_the_kd_loss_without_labels():
    texts, logits = texts_and_teacher(64)
    tokenizer = WordTokenizer()
    student = tiny_bert(2, seed=1)
    config = DistillationConfig(temperature=2.0, alpha=1.0)
    forward = kd_forward(config)
    from metalib.methods.transfer import TokenizedTexts, pad_collator

    rows = SoftTargets(TokenizedTexts(tokenizer, texts), logits)
    batch = pad_collator(tokenizer)([rows[i] for i in range(len(rows))])

    def loss() -> float:
        student.eval()
        with torch.no_grad():
            return forward(student, batch).loss.item()

    before = loss()
    train = TrainConfig(epochs=15, lr=3e-3, progress=False, device="cpu")
    trainer = distill(student, tokenizer, texts, logits, train, config, batch_size=16)
    after = loss()
    assert after < 0.7 * before, (before, after)
    decided = logits[:, 1] != logits[:, 0]  # rows where the teacher prefers a class
    predicted = trainer.predict(make_eval_loader(batch)).argmax(1)
    agree = (predicted == logits.argmax(1))[decided].float().mean()
    assert agree > 0.75, agree


def make_eval_loader(batch):
    return [{k: v for k, v in batch.items() if k != "teacher_logits"}]


# ---------------------------------------------------------------------------------------- latency
def test_compare_latency_ratios():
    big, small = torch.nn.Linear(512, 512), torch.nn.Linear(512, 4)
    inputs = {1: torch.randn(1, 512), 32: torch.randn(32, 512)}
    table = compare_latency({"big": big, "small": small}, lambda m, x: m(x), inputs, rounds=5)
    assert len(table) == 4 and set(table["batch_size"]) == {1, 32}
    assert (table["seconds"] > 0).all()
    assert (table[table.model == "big"]["speedup"] == 1.0).all()
    # 512x512 vs 512x4 matrices: the small layer is faster at batch 32
    assert table[(table.model == "small") & (table.batch_size == 32)]["speedup"].item() > 1.0
    with pytest.raises(ValueError, match="reference"):
        compare_latency({"big": big}, lambda m, x: m(x), inputs, reference="nope")


def test_soft_label_probe_matches_hard_labels_and_follows_soft_targets():
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from metalib.methods.distillation import soft_label_probe

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = (x[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(int)
    hard = soft_label_probe(x, np.eye(2)[y])
    plain = LogisticRegression(max_iter=2000, random_state=0).fit(x, y)
    np.testing.assert_allclose(hard.coef_, plain.coef_, atol=1e-4)  # one-hot targets: the ordinary probe
    soft = soft_label_probe(x, np.full((60, 2), 0.5))  # targets that say nothing: a flat student
    np.testing.assert_allclose(soft.predict_proba(x), 0.5, atol=1e-3)
    with pytest.raises(ValueError, match="class probabilities"):
        soft_label_probe(x, np.full((60, 2), 0.7))
    with pytest.raises(ValueError, match="must be \\(N, C\\)"):
        soft_label_probe(x, np.ones(60))
