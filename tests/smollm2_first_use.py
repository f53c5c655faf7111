"""Run by tests/test_zoo.py as two processes at once on an empty cache: each loads SmolLM2 and
writes its cache path and the logits of a fixed prompt."""

import json
import sys

import torch

from metalib import zoo

if __name__ == "__main__":  # a script, not a test module (pytest --doctest-modules imports it)
    model, tokenizer = zoo.load_causal_lm("smollm2-135m-instruct", device="cpu")
    ids = tokenizer("The movie was", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits[0, -1]
    print(
        json.dumps(
            {"path": str(zoo.smollm2_path()), "logits": logits[:50].tolist(), "top": int(logits.argmax())}
        )
    )
    sys.stdout.flush()
