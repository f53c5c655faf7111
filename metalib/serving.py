"""One frozen encoder serving several tasks, each a LoRA adapter and a head, switched per request.

:class:`AdapterServer` takes :class:`metalib.classifiers.FineTuneClassifier` estimators fitted with
``adapter="lora"`` on the same encoder, loads that encoder once, and adds every task's LoRA
matrices to it as a named peft adapter (``add_adapter``); each task keeps its own linear head.
:meth:`AdapterServer.predict_proba` switches the active adapter (``set_adapter``, in place, no
weights copied) and answers with that task's head. Predictions equal the estimator's own.

Example:
    >>> server = AdapterServer({"sentiment": sentiment_lora, "topic": topic_lora})  # doctest: +SKIP
    >>> server.predict("topic", ["a short text"])                                 # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metalib.classifiers import FineTuneClassifier, check_texts

__all__ = ["AdapterServer"]


class AdapterServer:
    """Serve fitted LoRA estimators (task name → :class:`~metalib.classifiers.FineTuneClassifier`)
    from one copy of their encoder.

    Attributes:
        encoder: the shared peft encoder, one adapter per task.
        models: task → mean-pooled classifier (the shared encoder and the task's head).
        classes: task → the estimator's ``classes_``.
    """

    def __init__(self, estimators: Mapping[str, FineTuneClassifier]) -> None:
        import copy

        from peft import get_peft_model, set_peft_model_state_dict
        from peft.utils import get_peft_model_state_dict

        from metalib import runtime
        from metalib.classifiers import _load_encoder
        from metalib.methods.transfer import MeanPoolClassifier

        if not estimators:
            raise ValueError("AdapterServer needs at least one fitted estimator")
        for task, estimator in estimators.items():
            if not isinstance(estimator, FineTuneClassifier) or estimator.adapter != "lora":
                raise ValueError(f"task {task!r}: expected a FineTuneClassifier with adapter='lora'")
            estimator._check_fitted()
        encoders = {estimator.encoder for estimator in estimators.values()}
        if len(encoders) > 1:
            raise ValueError(
                f"the estimators use different encoders {sorted(encoders)}: one server serves one"
            )
        first = next(iter(estimators.values()))
        base, self.tokenizer = _load_encoder(first.encoder, device="cpu")
        self.encoder = None
        self.models: dict[str, MeanPoolClassifier] = {}
        for task, estimator in estimators.items():
            fitted = estimator.model_.encoder  # a PeftModel with one adapter, "default"
            config = copy.deepcopy(fitted.peft_config["default"])
            if self.encoder is None:
                self.encoder = get_peft_model(base, config, adapter_name=task)
            else:
                self.encoder.add_adapter(task, config)
            weights = get_peft_model_state_dict(fitted, adapter_name="default")
            loaded = set_peft_model_state_dict(self.encoder, weights, adapter_name=task)
            if loaded.unexpected_keys:
                raise ValueError(f"task {task!r}: adapter weights do not fit: {loaded.unexpected_keys[:3]}")
            model = MeanPoolClassifier(self.encoder, len(estimator.classes_), estimator.model_.normalize)
            model.head.load_state_dict(estimator.model_.head.state_dict())
            self.models[task] = model
        self.classes = {task: estimator.classes_ for task, estimator in estimators.items()}
        self.max_length = {task: estimator.max_length for task, estimator in estimators.items()}
        device = runtime.get_device()
        for model in self.models.values():
            model.to(device).eval()

    def predict_proba(self, task: str, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities of ``texts`` under ``task``'s adapter and head, shape ``(N, C_task)``."""
        from metalib.methods.transfer import predict_text_logits

        if task not in self.models:
            raise ValueError(f"unknown task {task!r}: this server has {sorted(self.models)}")
        self.encoder.set_adapter(task)
        texts = check_texts(texts)
        logits = predict_text_logits(self.models[task], self.tokenizer, texts, self.max_length[task])
        return logits.double().softmax(-1).numpy()

    def predict(self, task: str, texts: Sequence[str]) -> np.ndarray:
        """The most probable class of every text under ``task``, shape ``(N,)``."""
        proba = self.predict_proba(task, texts)
        return self.classes[task][proba.argmax(axis=1)]

    def parameter_bytes(self) -> dict[str, Any]:
        """Bytes of parameters: ``"base"`` (the shared encoder without adapters) and, per task, its
        LoRA matrices plus its head."""

        def size(tensors) -> int:
            return sum(t.numel() * t.element_size() for t in tensors)

        named = list(self.encoder.named_parameters())
        out: dict[str, Any] = {"base": size(p for n, p in named if "lora_" not in n)}
        for task, model in self.models.items():
            adapter = (p for n, p in named if "lora_" in n and f".{task}." in n)
            out[task] = size(adapter) + size(model.head.parameters())
        return out
