"""What does the runner cost? One epoch of metalib's Trainer vs a hand-written PyTorch loop.

Same model, data, optimizer and batch order; the two are timed alternately, several repeats,
and the ratio of medians is printed. Inputs are random tensors: only speed is measured here.

    .venv/bin/python benchmarks/runner_overhead.py
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.data import TensorDataset

from metalib import runtime
from metalib.train import TrainConfig, Trainer, make_loader


def model_for(width: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(384, width), torch.nn.ReLU(), torch.nn.Linear(width, 2))


def plain_loop(width: int, loader) -> float:
    model = model_for(width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def runner(width: int, loader) -> float:
    trainer = Trainer(model_for(width), TrainConfig(epochs=1, lr=1e-3, progress=False, device="cpu"))
    start = time.perf_counter()
    trainer.fit(loader)
    return time.perf_counter() - start


def main(repeats: int = 5) -> None:
    runtime.seed_everything(0)
    data = TensorDataset(torch.randn(4096, 384), torch.randint(0, 2, (4096,)))
    print(f"{'model':<22}{'batches':>8}{'plain s':>10}{'runner s':>10}{'runner/plain':>14}")
    for width, batch_size in [(64, 32), (512, 32), (4096, 64)]:
        loader = make_loader(data, batch_size=batch_size, shuffle=True)
        plain, ours = [], []
        for _ in range(repeats):
            plain.append(plain_loop(width, loader))
            ours.append(runner(width, loader))
        p, r = statistics.median(plain), statistics.median(ours)
        name = f"MLP 384-{width}-2"
        print(f"{name:<22}{len(loader):>8}{p:>10.3f}{r:>10.3f}{r / p:>14.2f}")


if __name__ == "__main__":
    main()
