"""Sentence embeddings from an encoder: mean pooling over real tokens, then L2 normalisation.

This is how all-MiniLM-L6-v2 was trained to be used (Reimers & Gurevych 2019), so cosine
similarity between two embeddings is a dot product. Chapters use it for frozen features
(linear probes, prototypes) and for embedding zero-shot classification.

Example:
    >>> from metalib import zoo, embeddings                                    # doctest: +SKIP
    >>> model, tokenizer = zoo.load_encoder("minilm-l6")                       # doctest: +SKIP
    >>> embeddings.embed_texts(model, tokenizer, ["a fine film"]).shape        # doctest: +SKIP
    torch.Size([1, 384])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from metalib import runtime


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the hidden states of real (unpadded) tokens.

    Shapes: ``hidden`` (B, T, H), ``attention_mask`` (B, T) of 0/1 → (B, H).
    """
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (B, H)


@torch.no_grad()
def embed_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    max_length: int = 128,
    normalize: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """Embed ``texts`` with ``model`` in eval mode; returns a float32 CPU tensor of shape (N, H).

    Texts are embedded in order of length (and the rows put back in the input order), so a batch
    pads to a similar length: review snippets embed about twice as fast as in the input order.

    Args:
        batch_size: texts per forward pass.
        max_length: tokens kept per text (longer texts are truncated).
        normalize: L2-normalise each row (cosine similarity = dot product).
        progress: show a tqdm bar over batches.
    """
    from tqdm.auto import tqdm

    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths per batch
    chunks = []
    for start in tqdm(range(0, len(texts), batch_size), desc="embed", disable=not progress):
        batch = tokenizer(
            [texts[i] for i in order[start : start + batch_size]],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        with runtime.autocast(device):
            hidden = model(**batch).last_hidden_state  # (B, T, H)
        pooled = mean_pool(hidden.float(), batch["attention_mask"])  # (B, H)
        chunks.append((F.normalize(pooled, dim=-1) if normalize else pooled).cpu())
    model.train(was_training)
    if not chunks:
        return torch.empty(0, model.config.hidden_size)
    out = torch.empty_like(torch.cat(chunks))
    out[torch.tensor(order)] = torch.cat(chunks)
    return out


def cached_embeddings(
    name: str,
    texts: Sequence[str],
    *,
    max_length: int = 128,
    normalize: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """:func:`embed_texts` with the encoder ``name`` of :func:`metalib.zoo.load_encoder`, cached.

    Frozen features are computed once per (model, texts, settings) and stored in metalib's cache
    (key: the model's name and resolved source, a hash of the texts, ``max_length``, ``normalize``
    and :func:`metalib.runtime.code_fingerprint` of this module),
    written atomically under a lock. Returns float32 ``(N, H)`` on the CPU.
    """
    import hashlib

    from safetensors.torch import load_file, save_file

    from metalib import zoo

    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    digest = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()
    key = runtime.cache_key(
        model=name,
        source=zoo.encoder_source(name),
        texts=digest,
        n=len(texts),
        max_length=max_length,
        normalize=normalize,
        code=runtime.code_fingerprint(__name__),
    )
    path = runtime.cache_dir() / "embeddings" / f"{name.replace('/', '--')}-{key}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    with runtime.file_lock(path):
        if not path.exists():
            model, tokenizer = zoo.load_encoder(name)
            features = embed_texts(
                model, tokenizer, texts, max_length=max_length, normalize=normalize, progress=progress
            )
            with runtime.atomic_path(path) as tmp:
                save_file({"features": features.contiguous()}, str(tmp))
    return load_file(str(path))["features"]
