"""Parameter-efficient fine-tuning with peft: merge equivalence, save/load with the head, BitFit,
adapter switching, and that prompt tuning actually trains (peft#2642)."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import BertForSequenceClassification, GPT2LMHeadModel

from metalib import zoo
from metalib.methods import adapters as ad

VOCAB = 100


def tiny_classifier(seed: int = 0, num_labels: int = 2) -> BertForSequenceClassification:
    """A randomly initialised tiny BERT classifier; the same ``seed`` gives the same weights."""
    torch.manual_seed(seed)
    config = zoo.tiny_bert_config(VOCAB, num_labels=num_labels, hidden_dropout_prob=0.0)
    return BertForSequenceClassification(config).eval()


def batch(seed: int = 1, size: int = 8, length: int = 12) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, VOCAB, (size, length), generator=generator)  # (B, T)
    mask = torch.ones_like(input_ids)
    mask[: size // 2, length // 2 :] = 0  # half the rows padded
    return {"input_ids": input_ids, "attention_mask": mask}


def perturb_adapter(model: torch.nn.Module, seed: int = 2) -> None:
    """Give every trainable tensor random values, as training would (LoRA's B starts at zero, which
    would make merge and reload trivially exact)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.5 * torch.randn(parameter.shape, generator=generator))


def logits(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**inputs).logits


def test_config_validation():
    with pytest.raises(ValueError, match="method"):
        ad.AdapterConfig("adapter")
    with pytest.raises(ValueError, match="rank"):
        ad.AdapterConfig("lora", rank=0)
    with pytest.raises(ValueError, match="target"):
        ad.AdapterConfig("lora", target="everything")


@pytest.mark.parametrize("target", list(ad.TARGETS))
def test_lora_is_a_no_op_at_init_and_counts_its_parameters(target):
    base = tiny_classifier()
    inputs = batch()
    before = logits(base, inputs)
    model = get_peft_model(base, ad.peft_config(ad.AdapterConfig("lora", rank=4, target=target)))
    torch.testing.assert_close(logits(model, inputs), before)  # B = 0 at init
    count = ad.trainable_parameters(model)
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    head = sum(p.numel() for n, p in model.named_parameters() if "modules_to_save" in n)
    assert count.trainable == lora + head and head == 128 * 2 + 2
    assert 0 < count.percent < 100


def test_merge_and_unload_gives_the_same_logits():
    model = get_peft_model(
        tiny_classifier(), ad.peft_config(ad.AdapterConfig("lora", rank=4, target="all_linear"))
    )
    perturb_adapter(model)
    inputs = batch()
    adapted = logits(model, inputs)
    merged = model.merge_and_unload()
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    # float32 sums in another order: ~1e-5 on logits of size ~2, depending on the CPU's kernels;
    # a wrong merge is off by the perturbation's scale (~0.1 and more)
    assert (logits(merged, inputs) - adapted).abs().max() <= 1e-4
    assert (adapted - logits(tiny_classifier(), inputs)).abs().max() > 1e-2  # the adapter did change them


def test_save_load_round_trip_keeps_the_head(tmp_path):
    model = get_peft_model(tiny_classifier(), ad.peft_config(ad.AdapterConfig("lora", rank=4)))
    perturb_adapter(model)
    inputs = batch()
    expected = logits(model, inputs)
    model.save_pretrained(tmp_path)
    reloaded = PeftModel.from_pretrained(tiny_classifier(), tmp_path)
    assert torch.equal(logits(reloaded, inputs), expected)


def test_without_modules_to_save_the_reloaded_head_is_random(tmp_path):
    """The trap of peft#310/#577/#876: a head trained alongside the adapter but not declared in
    ``modules_to_save`` is not written to the adapter file; reloading gives the base model's head."""
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"])  # no task type, no head
    model = get_peft_model(tiny_classifier(), config)
    for parameter in model.base_model.model.classifier.parameters():
        parameter.requires_grad_(True)  # trained as usual ...
    perturb_adapter(model)
    inputs = batch()
    expected = logits(model, inputs)
    model.save_pretrained(tmp_path)
    fresh_base = tiny_classifier(seed=5)  # ... but a new process builds its head from another seed
    reloaded = PeftModel.from_pretrained(fresh_base, tmp_path)
    assert (logits(reloaded, inputs) - expected).abs().max() > 1e-2


def test_bitfit_leaves_only_biases_and_the_head_trainable():
    model = tiny_classifier()
    trainable = ad.bitfit(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(n.endswith("bias") or n.startswith("classifier.") for n in names)
    assert "classifier.weight" in names
    assert trainable == ad.trainable_parameters(model).trainable
    frozen_weights = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert all(not n.endswith("bias") for n in frozen_weights)
    with pytest.raises(ValueError, match="nothing would train"):
        ad.bitfit(torch.nn.Linear(3, 2, bias=False), head=None)


def test_two_adapters_switch_per_request():
    sentiment = get_peft_model(
        tiny_classifier(), ad.peft_config(ad.AdapterConfig("lora", rank=4)), "sentiment"
    )
    perturb_adapter(sentiment, seed=3)
    inputs = batch()
    expected_sentiment = logits(sentiment, inputs)
    # a second adapter with its own head (3 classes would need another head size; same size here)
    sentiment.add_adapter("topic", ad.peft_config(ad.AdapterConfig("lora", rank=2)))
    sentiment.set_adapter("topic")
    perturb_adapter(sentiment, seed=4)
    expected_topic = logits(sentiment, inputs)
    assert (expected_topic - expected_sentiment).abs().max() > 1e-2
    sentiment.set_adapter("sentiment")
    assert torch.equal(logits(sentiment, inputs), expected_sentiment)
    sentiment.set_adapter("topic")
    assert torch.equal(logits(sentiment, inputs), expected_topic)


def train_steps(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], lr: float, steps: int
) -> list[float]:
    """Losses of ``steps`` AdamW steps on one batch, dropout off (eval mode) so the curve is smooth."""
    model.eval()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("method", ["ia3", "lora"])
def test_adapter_loss_falls(method):
    model = get_peft_model(tiny_classifier(), ad.peft_config(ad.AdapterConfig(method, rank=4)))
    losses = train_steps(model, batch() | {"labels": torch.tensor([0, 1] * 4)}, lr=1e-2, steps=15)
    assert losses[-1] < 0.8 * losses[0], losses


def test_prompt_tuning_trains_the_prompt():
    """peft#2642: prompt tuning once silently stopped learning. The loss must fall and the virtual
    tokens must move. (A random tiny BERT cannot be steered by a prompt, so this uses MiniLM.)"""
    texts = [
        "a wonderful, moving film",
        "great acting and a smart script",
        "I loved every minute",
        "a delight",
    ]
    texts += ["dull and lifeless", "a tedious, boring mess", "awful from start to finish", "a waste of time"]
    torch.manual_seed(0)
    base, tokenizer = zoo.load_encoder("minilm-l6", num_labels=2, device="cpu")
    model = get_peft_model(base, ad.peft_config(ad.AdapterConfig("prompt", virtual_tokens=4)))
    prompt = model.prompt_encoder["default"].embedding.weight
    before = prompt.detach().clone()
    inputs = dict(tokenizer(texts, padding=True, return_tensors="pt")) | {
        "labels": torch.tensor([1] * 4 + [0] * 4)
    }
    losses = train_steps(model, inputs, lr=3e-2, steps=12)
    assert min(losses[-3:]) < 0.8 * losses[0], losses
    assert (prompt.detach() - before).abs().max() > 1e-3


def test_training_memory_counts_gradients_and_moments_of_trainable_weights():
    model = tiny_classifier()
    total = ad.trainable_parameters(model).total
    assert ad.training_memory(model) == 4 * total * 4  # weights, grads, two moments; float32
    trainable = ad.bitfit(model)
    assert ad.training_memory(model) == 4 * total + 3 * 4 * trainable


def test_answer_only_batch_masks_the_prompt():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(zoo.minilm_path())
    tokenizer.eos_token = "[SEP]"
    out = ad.answer_only_batch(tokenizer, ["review: great. sentiment:", "bad"], [" positive", " negative"])
    for row, word in enumerate(["positive", "negative"]):
        labels = out["labels"][row]
        answer = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        assert labels[labels != -100].tolist() == answer + [tokenizer.sep_token_id]
    prompt_length = len(tokenizer("review: great. sentiment:", add_special_tokens=False)["input_ids"])
    assert (out["labels"][0, :prompt_length] == -100).all()
    assert out["input_ids"].shape == out["labels"].shape == out["attention_mask"].shape
    assert (out["labels"][out["attention_mask"] == 0] == -100).all()


def test_lora_on_a_causal_lm_trains_only_on_the_answer():
    torch.manual_seed(0)
    lm = GPT2LMHeadModel(zoo.tiny_gpt_config(VOCAB))
    config = LoraConfig(
        task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True
    )
    model = get_peft_model(lm, config)
    inputs = batch(size=4)
    labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    labels[:, :-2] = -100  # only the last two tokens are the "answer"
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    model.train()
    for _ in range(10):
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_train_answer_only_lowers_the_answer_loss():
    from metalib.train import TrainConfig

    model, tokenizer = zoo.load_causal_lm("smollm2-135m-instruct")
    lora = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["q_proj", "v_proj"]))
    prompts = [
        "Is 'a great film' positive or negative? Answer:",
        "Is 'a dull mess' positive or negative? Answer:",
    ]
    answers = [" positive", " negative"]
    config = TrainConfig(max_steps=4, lr=1e-3, log_every=1, progress=False)
    trainer = ad.train_answer_only(lora, tokenizer, prompts * 2, answers * 2, config, batch_size=2)
    losses = trainer.history.steps["loss"]
    assert len(losses) == 4 and losses.iloc[-1] < losses.iloc[0]
    with pytest.raises(ValueError, match="one answer per prompt"):
        ad.train_answer_only(lora, tokenizer, prompts, answers[:1], config)
