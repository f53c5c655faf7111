"""How fast is functional MAML? learn2learn's MAML vs metalib's vmapped MAML, meta-iterations/s.

The sine setting of Finn et al. 2017: MLP 1-40-40-1 with ReLU, meta-batch 25, K=10 support and 10
query points per task, inner lr 0.01, second-order, Adam outer step. Both sides start from the same
weights and see the same task batches; learn2learn runs its documented loop (``maml.clone()``,
``learner.adapt(loss)`` per task), metalib one ``vmap`` over the tasks. The two are timed in
alternating blocks after a warm-up, several repeats, and the ratio of medians is printed.

    .venv/bin/python benchmarks/maml_speed.py [--threads 1] [--repeats 5]

Tiny matrices gain nothing from intra-op threads, and on a busy machine a second thread costs a lot
(contention): the default is one thread, and the table says how many were used.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F

from metalib.data.sine import SineBatch, SineTasks
from metalib.methods.maml import MAML, MAMLConfig

META_BATCH, K_SHOT, INNER_LR, OUTER_LR = 25, 10, 0.01, 1e-3


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(1, 40),
        torch.nn.ReLU(),
        torch.nn.Linear(40, 40),
        torch.nn.ReLU(),
        torch.nn.Linear(40, 1),
    )


def learn2learn_step(steps: int) -> Callable[[SineBatch], float]:
    """One meta-iteration the way learn2learn's sine example writes it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import learn2learn as l2l

    maml = l2l.algorithms.MAML(model(), lr=INNER_LR, first_order=False)
    optimizer = torch.optim.Adam(maml.parameters(), lr=OUTER_LR)

    def step(batch: SineBatch) -> float:
        error = 0.0
        for t in range(len(batch)):
            learner = maml.clone()
            for _ in range(steps):
                learner.adapt(F.mse_loss(learner(batch.x_support[t]), batch.y_support[t]))
            error = error + F.mse_loss(learner(batch.x_query[t]), batch.y_query[t])
        error = error / len(batch)
        optimizer.zero_grad()
        error.backward()
        optimizer.step()
        return error.item()

    return step


def metalib_step(steps: int) -> Callable[[SineBatch], float]:
    maml = MAML(model(), MAMLConfig(inner_lr=INNER_LR, steps=steps, first_order=False))
    optimizer = torch.optim.Adam(maml.parameters(), lr=OUTER_LR)
    return lambda batch: maml.meta_train_step(batch, F.mse_loss, optimizer)


def timed(step: Callable[[SineBatch], float], batches: list[SineBatch], n: int, start: int) -> float:
    """Meta-iterations per second over ``n`` iterations, cycling through ``batches``."""
    begin = time.perf_counter()
    for i in range(start, start + n):
        step(batches[i % len(batches)])
    return n / (time.perf_counter() - begin)


def main(threads: int = 1, repeats: int = 5, block_seconds: float = 0.5) -> None:
    torch.set_num_threads(threads)
    batches = [SineTasks(seed).sample_batch(META_BATCH, K_SHOT, K_SHOT) for seed in range(10)]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), meta-batch {META_BATCH}, K={K_SHOT}"
    )
    print(
        f"{'inner steps':<13}{'learn2learn it/s':>18}{'metalib it/s':>14}{'metalib/l2l':>13}{'loss diff':>11}"
    )
    for steps in (1, 5):
        theirs, ours = learn2learn_step(steps), metalib_step(steps)
        loss_diff = abs(theirs(batches[0]) - ours(batches[0]))  # same weights, same batch: same loss
        # warm-up, which also sizes each block to about block_seconds
        sizes = {
            name: max(2, round(block_seconds * timed(f, batches, 3, 1)))
            for name, f in (("l2l", theirs), ("ml", ours))
        }
        rates: dict[str, list[float]] = {"l2l": [], "ml": []}
        for r in range(repeats):  # alternate the timed blocks
            rates["l2l"].append(timed(theirs, batches, sizes["l2l"], r))
            rates["ml"].append(timed(ours, batches, sizes["ml"], r))
        l2l_rate, ml_rate = statistics.median(rates["l2l"]), statistics.median(rates["ml"])
        print(f"{steps:<13}{l2l_rate:>18.1f}{ml_rate:>14.1f}{ml_rate / l2l_rate:>13.2f}{loss_diff:>11.1e}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per method (default 5)")
    args = parser.parse_args()
    main(threads=args.threads, repeats=args.repeats)
