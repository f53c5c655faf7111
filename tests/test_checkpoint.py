import random

import numpy as np
import pytest
import torch

from metalib.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


def _tied_model() -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight  # tied, as in language models
    return model


def test_round_trip_restores_model_optimizer_extra_and_rng(tmp_path):
    torch.manual_seed(0)
    model = _tied_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.9))
    model(torch.tensor([1, 2])).sum().backward()
    optimizer.step()
    set_rng_state(rng_state())  # a no-op round trip
    save_checkpoint(
        tmp_path / "ckpt",
        model,
        optimizer,
        {"step": 1, "path": tmp_path, "pair": (1, 2)},
        extra={"best": {"w": torch.ones(3)}},
    )
    expected_draw = (torch.rand(1).item(), random.random(), np.random.rand())

    torch.manual_seed(1)
    fresh = _tied_model()
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=1.0)
    saved = load_checkpoint(tmp_path / "ckpt", fresh, fresh_optimizer)
    assert saved.state == {"step": 1, "path": str(tmp_path), "pair": [1, 2]}
    assert torch.equal(saved.extra["best"]["w"], torch.ones(3))
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert fresh[1].weight is fresh[0].weight  # still tied
    assert fresh_optimizer.param_groups[0]["lr"] == 1e-2 and tuple(
        fresh_optimizer.param_groups[0]["betas"]
    ) == (0.8, 0.9)
    state = fresh_optimizer.state_dict()["state"][0]
    torch.testing.assert_close(state["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    set_rng_state(saved.rng)
    assert (torch.rand(1).item(), random.random(), np.random.rand()) == expected_draw


def test_missing_checkpoint_and_unstorable_state(tmp_path):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none", model, optimizer)
    with pytest.raises(TypeError, match="cannot store object"):
        save_checkpoint(tmp_path / "bad", model, optimizer, {"x": object()})
    assert not (tmp_path / "bad").exists()  # nothing half-written
