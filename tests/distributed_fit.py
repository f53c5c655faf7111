"""Run by tests/test_train.py under `torchrun --nproc_per_node 2`: each rank writes what it ended with."""

import json
import sys
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from metalib.train import TrainConfig, Trainer, make_loader


def main(out: Path) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    trainer = Trainer(model, TrainConfig(epochs=6, lr=3e-2, progress=False))
    history = trainer.fit(
        make_loader(TensorDataset(x, y), 8, shuffle=True, seed=1),
        make_loader(TensorDataset(x[:40], y[:40]), 16),
    )
    logits = trainer.predict(make_loader(TensorDataset(x[:40], y[:40]), 16))
    acc = trainer.accelerator
    weights = {k: v.flatten().tolist() for k, v in trainer.unwrapped_model.state_dict().items()}
    with torch.no_grad():  # the validation loss computed directly, on one process, for comparison
        direct = torch.nn.functional.cross_entropy(trainer.unwrapped_model(x[:40]), y[:40]).item()
    record = {
        "direct_val_loss": direct,
        "world_size": acc.num_processes,
        "weights": weights,
        "eval_rows": history.eval_rows,
        "n_eval": logits.shape[0],
    }
    (out / f"rank{acc.process_index}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
