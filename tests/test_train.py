"""The runner: resume equals no interruption, early stopping, accumulation, the history table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from metalib.train import StepOutput, TrainConfig, Trainer, accuracy, make_loader

HERE = Path(__file__).parent
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _data(n: int = 96, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return TensorDataset(x, y)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 2)
    )


class _Crash(RuntimeError):
    pass


class _CrashingData(torch.utils.data.Dataset):
    """The training data, but the process "dies" when the loader asks for row number ``after + 1``."""

    def __init__(self, data: TensorDataset, after_rows: int) -> None:
        self.data, self.after_rows, self.served = data, after_rows, 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        self.served += 1
        if self.served > self.after_rows:
            raise _Crash("simulated interruption")
        return self.data[index]


def _run(config: TrainConfig, crash_after_rows: int | None = None, seed: int = 123):
    torch.manual_seed(seed)  # model initialisation and the dropout stream
    trainer = Trainer(_model(), config)
    data = _data() if crash_after_rows is None else _CrashingData(_data(), crash_after_rows)
    train = make_loader(data, batch_size=8, shuffle=True, seed=7)
    val = make_loader(_data(40, seed=1), batch_size=16)
    history = trainer.fit(train, val)
    return trainer.unwrapped_model, history


@pytest.mark.parametrize("interrupt_after_batches", [7, 21])  # mid-epoch 0 and mid-epoch 1 (12 a epoch)
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, interrupt_after_batches):
    # log_every=3 does not divide checkpoint_every=2: a logged mean spans the interruption
    common = dict(
        epochs=3,
        lr=3e-2,
        grad_accum=2,
        warmup_ratio=0.2,
        eval_every=4,
        log_every=3,
        checkpoint_every=2,
        progress=False,
        device="cpu",
        patience=100,
    )
    reference, ref_history = _run(TrainConfig(**common, checkpoint_dir=tmp_path / "ref"))

    config = TrainConfig(**common, checkpoint_dir=tmp_path / "resumed")
    with pytest.raises(_Crash):
        _run(config, crash_after_rows=8 * interrupt_after_batches)
    saved = json.loads((tmp_path / "resumed" / "last" / "state.json").read_text())
    assert 0 < saved["state"]["loop"]["step"] < 18  # really interrupted part-way, with steps left to redo

    # another seed at restart must not matter: the checkpoint restores weights and random streams
    resumed, history = _run(config, seed=999)

    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert history.train_rows == ref_history.train_rows
    assert history.eval_rows == ref_history.eval_rows
    assert history.train_rows[-1]["step"] == 18


def test_uninterrupted_run_without_checkpoint_matches_checkpointed_run(tmp_path):
    common = dict(epochs=2, lr=3e-2, progress=False, device="cpu")
    plain, _ = _run(TrainConfig(**common))
    checkpointed, _ = _run(TrainConfig(**common, checkpoint_dir=tmp_path))
    for a, b in zip(plain.parameters(), checkpointed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_training_learns_and_history_plots():
    model, history = _run(TrainConfig(epochs=6, lr=3e-2, progress=False, device="cpu"))
    evals = history.evals
    assert list(evals.columns) == ["step", "epoch", "val_loss", "val_accuracy"]
    assert evals["val_loss"].iloc[-1] < evals["val_loss"].iloc[0]
    assert evals["val_accuracy"].iloc[-1] >= 0.8
    assert len(history.steps) == 6 * 12 // 10 + 1  # every 10 steps plus the last
    fig = history.plot()
    assert [ax.get_title() for ax in fig.axes] == ["loss", "val_accuracy"]
    assert history.best()["val_loss"] == evals["val_loss"].min()


@pytest.mark.parametrize("restore_best", [True, False])
def test_early_stopping_and_best_weights(restore_best):
    config = TrainConfig(
        epochs=50, lr=0.5, eval_every=1, patience=3, restore_best=restore_best, progress=False, device="cpu"
    )  # lr 0.5: the validation loss soon rises
    trainer = Trainer(_model(), config)
    val = make_loader(_data(40, seed=1), batch_size=40)
    history = trainer.fit(make_loader(_data(), batch_size=8, shuffle=True), val)
    rows = history.eval_rows
    assert rows[-1]["step"] < 50 * 12  # stopped early
    best = history.best()["val_loss"]
    assert [row["val_loss"] > best for row in rows[-3:]] == [
        True
    ] * 3  # three evaluations without improvement
    final = trainer.evaluate(val)["loss"]
    if restore_best:
        assert final == pytest.approx(best, abs=1e-6)
    else:
        assert final == pytest.approx(rows[-1]["val_loss"], abs=1e-6) and final > best


def test_grad_accumulation_equals_large_batch():
    """Two batches of 8 accumulated make the same step as one batch of 16 (no dropout, mean loss)."""

    def linear():
        torch.manual_seed(0)
        return torch.nn.Linear(6, 2)

    results = []
    for batch_size, accum in [(16, 1), (8, 2)]:
        trainer = Trainer(
            linear(),
            TrainConfig(
                max_steps=3, lr=1e-2, grad_accum=accum, max_grad_norm=None, progress=False, device="cpu"
            ),
        )
        trainer.fit(make_loader(_data(48), batch_size=batch_size))
        results.append(trainer.unwrapped_model.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_same_api_on_every_device(device):
    trainer = Trainer(_model(), TrainConfig(epochs=1, lr=1e-2, progress=False, device=device))
    assert trainer.device.type == device
    # sizes that batches do not divide: 90 = 5 * 16 + 10 and 37 = 2 * 16 + 5
    history = trainer.fit(make_loader(_data(90), batch_size=16), make_loader(_data(37), batch_size=16))
    scores = trainer.evaluate(make_loader(_data(37), batch_size=16))
    assert set(scores) == {"loss", "accuracy"}
    logits = trainer.predict(make_loader(_data(37), batch_size=16))
    assert logits.shape == (37, 2) and logits.device.type == "cpu"
    x, y = _data(37).tensors
    with torch.no_grad():
        direct = trainer.unwrapped_model.cpu()(x)
    torch.testing.assert_close(logits, direct)  # every row, in order
    assert scores["accuracy"] == pytest.approx((direct.argmax(1) == y).float().mean().item())
    assert history.eval_rows[-1]["val_accuracy"] == pytest.approx(scores["accuracy"])


def test_regression_batches_use_mse_and_custom_metrics():
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    data = TensorDataset(x, 3 * x)
    trainer = Trainer(
        torch.nn.Linear(1, 1),
        TrainConfig(epochs=20, lr=0.1, progress=False, device="cpu"),
        metrics={"max_error": lambda pred, y: (pred - y).abs().max().item()},
    )
    history = trainer.fit(make_loader(data, 16, shuffle=True), make_loader(data, 64))
    assert set(history.eval_rows[-1]) == {"step", "epoch", "val_loss", "val_max_error"}
    assert history.eval_rows[-1]["val_loss"] < 0.01


def test_dict_batches_and_custom_forward():
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(6, 2)

        def forward(self, features, labels=None):
            logits = self.linear(features)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            return type("Out", (), {"loss": loss, "logits": logits})()

    data = _data()
    rows = [{"features": x, "labels": y} for x, y in data]
    loader = make_loader(rows, batch_size=16)
    trainer = Trainer(Model(), TrainConfig(epochs=1, lr=1e-2, progress=False, device="cpu"))
    assert set(trainer.fit(loader, loader).eval_rows[-1]) == {"step", "epoch", "val_loss", "val_accuracy"}

    def forward(model, batch):
        out = model(**batch)
        return StepOutput(out.loss * 0, out.logits, batch["labels"])

    zero = Trainer(Model(), TrainConfig(epochs=1, progress=False, device="cpu"), forward=forward)
    assert zero.evaluate(loader)["loss"] == 0.0


def test_accuracy_and_config_validation():
    assert accuracy(torch.tensor([[0.1, 0.9], [2.0, 1.0]]), torch.tensor([1, 1])) == 0.5
    with pytest.raises(ValueError, match="grad_accum"):
        TrainConfig(grad_accum=0)
    with pytest.raises(ValueError, match="warmup_ratio"):
        TrainConfig(warmup_ratio=1.0)
    with pytest.raises(ValueError, match="mode"):
        TrainConfig(mode="up")
    with pytest.raises(ValueError, match="scheduler"):
        TrainConfig(scheduler="step")
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        Trainer(frozen, TrainConfig(progress=False, device="cpu"))
    with pytest.raises(ValueError, match="no batches"):
        Trainer(_model(), TrainConfig(progress=False, device="cpu")).fit(make_loader([], 4))
    with pytest.raises(KeyError, match="monitor"):
        Trainer(_model(), TrainConfig(epochs=1, monitor="val_f1", progress=False, device="cpu")).fit(
            make_loader(_data(), 16), make_loader(_data(), 16)
        )


def test_two_processes_under_torchrun_agree(tmp_path):
    """The same script under `torchrun --nproc_per_node 2` (CPU, gloo): both ranks end identical."""
    env = {**os.environ, "METALIB_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(HERE / "distributed_fit.py"),
        str(tmp_path),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    assert ranks[0]["weights"] == ranks[1]["weights"]  # DDP kept the replicas identical
    assert ranks[0]["eval_rows"] == ranks[1]["eval_rows"]  # metrics gathered over both shards
    assert ranks[0]["eval_rows"][-1]["val_accuracy"] >= 0.8
    assert ranks[0]["n_eval"] == 40  # gather_for_metrics saw every validation example once
    # 40 rows in batches of 16 on 2 processes: accelerate pads with repeats; the loss must not count them
    assert ranks[0]["eval_rows"][-1]["val_loss"] == pytest.approx(ranks[0]["direct_val_loss"], rel=1e-5)


def test_resume_refuses_a_checkpoint_from_another_config(tmp_path):
    _run(TrainConfig(epochs=1, lr=3e-2, progress=False, device="cpu", checkpoint_dir=tmp_path))
    trainer = Trainer(
        _model(), TrainConfig(epochs=2, lr=1e-2, progress=False, device="cpu", checkpoint_dir=tmp_path)
    )
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with pytest.raises(ValueError, match=r"different TrainConfig \(epochs, lr\)"):
        trainer.fit(make_loader(_data(), batch_size=8))
    assert all(
        torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True)
    )  # untouched
    # what may change between runs does not count
    _run(TrainConfig(epochs=1, lr=3e-2, progress=True, device="cpu", checkpoint_dir=tmp_path))


def test_plain_loaders_warn_that_resume_is_not_exact(tmp_path):
    loader = torch.utils.data.DataLoader(_data(), batch_size=16, shuffle=True)
    trainer = Trainer(_model(), TrainConfig(epochs=1, progress=False, device="cpu", checkpoint_dir=tmp_path))
    with pytest.warns(UserWarning, match="resume exactly only with loaders from make_loader"):
        trainer.fit(loader)


def test_predict_without_labels_and_history_per_fit():
    trainer = Trainer(_model(), TrainConfig(epochs=1, lr=1e-2, progress=False, device="cpu"))
    val = make_loader(_data(32), batch_size=16)
    first = trainer.fit(make_loader(_data(), batch_size=16), val)
    second = trainer.fit(make_loader(_data(), batch_size=16), val)
    assert first is not second and [r["step"] for r in second.eval_rows] == [6]  # not appended to the first
    x = torch.stack([row[0] for row in _data(32)])
    logits = trainer.predict(make_loader(TensorDataset(x), batch_size=16))
    torch.testing.assert_close(logits, trainer.predict(val))
    scores = trainer.evaluate(make_loader(TensorDataset(x), batch_size=16))
    assert set(scores) == {"loss"} and scores["loss"] != scores["loss"]  # NaN: no labels, no loss


def test_eval_at_start_records_the_untrained_model():
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    model = torch.nn.Linear(4, 2)
    loader = make_loader(TensorDataset(x, y), 16)
    before = Trainer(model, TrainConfig(progress=False, device="cpu")).evaluate(loader)
    config = TrainConfig(max_steps=4, eval_every=2, eval_at_start=True, progress=False, device="cpu")
    history = Trainer(model, config).fit(loader, loader)
    assert [row["step"] for row in history.eval_rows] == [0, 2, 4]
    assert history.eval_rows[0]["val_loss"] == pytest.approx(before["loss"])


def test_length_grouped_batches_are_homogeneous_reproducible_and_complete():
    lengths = [int(x) for x in torch.randint(1, 60, (1003,), generator=torch.Generator().manual_seed(0))]
    data = TensorDataset(torch.arange(1003))
    loader = make_loader(data, 16, shuffle=True, seed=3, lengths=lengths)
    batches = [batch[0].tolist() for batch in loader]
    assert sorted(i for b in batches for i in b) == list(range(1003))  # each example once per epoch
    assert [len(b) for b in batches[:-1]] == [16] * 62 and len(batches[-1]) == 11
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    plain = [batch[0].tolist() for batch in make_loader(data, 16, shuffle=True, seed=3)]
    plain_spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in plain) / len(plain)
    assert spread < 0.2 * plain_spread  # about 2 vs 50 tokens
    assert batches == [
        batch[0].tolist() for batch in make_loader(data, 16, shuffle=True, seed=3, lengths=lengths)
    ]
    loader.sampler.set_epoch(1)
    assert [batch[0].tolist() for batch in loader] != batches
    assert list(make_loader(data, 16, lengths=lengths).sampler) == list(range(1003))  # no shuffle: in order
    with pytest.raises(ValueError, match="lengths"):
        make_loader(data, 16, shuffle=True, lengths=lengths[:5])
