"""Does our fine-tuning path cost speed? metalib's ``fine_tune`` against ``transformers.Trainer``.

The same model (MiniLM-L6 with a sequence-classification head: the same initial weights on both
sides), the same 1,024 movie-disjoint Rotten Tomatoes training snippets, batches of 16 padded per
batch (at most 64 tokens), 128 AdamW steps (two epochs) at learning rate 5e-5, weight decay 0.01
on matrices only, gradients clipped at norm 1, a linear schedule with 12 warm-up steps, no
evaluation during training. The two train alternately (ours, theirs, ours, ...), and the ratio of
median training snippets per second is printed, with each side's test accuracy (998 snippets,
Wilson 95% interval): the two recipes are the same, so the accuracies should agree within those
intervals (batch order differs: each side draws its own).

    .venv/bin/python benchmarks/finetune_engines.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from metalib import data, runtime, zoo
from metalib.evaluate import accuracy_estimate
from metalib.methods.transfer import (
    TokenizedTexts,
    fine_tune,
    pad_collator,
    predict_text_logits,
    stratified_subset,
)
from metalib.train import TrainConfig

N_TRAIN, STEPS, BATCH, LR, WEIGHT_DECAY, WARMUP, MAX_LENGTH = 1024, 128, 16, 5e-5, 0.01, 0.1, 64


def fresh_model(seed: int):
    runtime.seed_everything(seed)  # the head's initial weights: the same on both sides
    return zoo.load_encoder("minilm-l6", num_labels=2)


def ours(train: tuple[list[str], list[int]], seed: int):
    model, tokenizer = fresh_model(seed)
    config = TrainConfig(
        max_steps=STEPS, lr=LR, weight_decay=WEIGHT_DECAY, warmup_ratio=WARMUP, progress=False
    )
    start = time.perf_counter()
    trainer = fine_tune(
        model, tokenizer, train, None, config, batch_size=BATCH, max_length=MAX_LENGTH, seed=seed
    )
    return trainer.unwrapped_model, tokenizer, time.perf_counter() - start


def theirs(train: tuple[list[str], list[int]], seed: int):
    import transformers

    model, tokenizer = fresh_model(seed)
    with tempfile.TemporaryDirectory() as tmp:
        args = transformers.TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=BATCH,
            max_steps=STEPS,
            learning_rate=LR,
            weight_decay=WEIGHT_DECAY,
            warmup_steps=int(WARMUP * STEPS),
            lr_scheduler_type="linear",
            max_grad_norm=1.0,
            seed=seed,
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            dataloader_pin_memory=False,
            use_cpu=not torch.cuda.is_available(),
        )
        trainer = transformers.Trainer(
            model=model,
            args=args,
            train_dataset=TokenizedTexts(tokenizer, *train, max_length=MAX_LENGTH),
            data_collator=pad_collator(tokenizer),
        )
        trainer.remove_callback(transformers.PrinterCallback)  # no log line at the end
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return trainer.model, tokenizer, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="trainings per side")
    args = parser.parse_args(argv)
    import transformers

    transformers.logging.set_verbosity_error()
    splits = data.rotten_tomatoes(seed=0)
    rows = stratified_subset(splits.train.labels, N_TRAIN, 0)
    train = ([splits.train.texts[i] for i in rows], [splits.train.labels[i] for i in rows])
    test_labels = torch.tensor(splits.test.labels)
    seconds: dict[str, list[float]] = {"metalib fine_tune": [], "transformers.Trainer": []}
    accuracy = {}
    for repeat in range(args.repeats):
        for name, engine in (("metalib fine_tune", ours), ("transformers.Trainer", theirs)):
            model, tokenizer, took = engine(train, seed=0)
            seconds[name].append(took)
            if repeat == 0:
                predicted = predict_text_logits(model, tokenizer, splits.test.texts, MAX_LENGTH).argmax(-1)
                accuracy[name] = accuracy_estimate((predicted == test_labels).tolist())
    device = runtime.describe()["device"]
    print(f"{device}, {torch.get_num_threads()} threads, {args.repeats} trainings per side")
    print(f"{'engine':<22}{'snippets/s':>12}{'test accuracy [95% CI]':>36}")
    speed = {name: STEPS * BATCH / statistics.median(s) for name, s in seconds.items()}
    for name, per_second in speed.items():
        print(f"{name:<22}{per_second:>12.1f}{accuracy[name]!s:>36}")
    print(f"ratio (metalib / transformers): {speed['metalib fine_tune'] / speed['transformers.Trainer']:.2f}")


if __name__ == "__main__":
    main()
