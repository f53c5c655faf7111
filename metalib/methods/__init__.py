"""Methods of the book, one concept per module; each imports its heavy dependencies itself.

- :mod:`metalib.methods.pretraining` — corpus, WordPiece tokenizer, masked and causal language modelling.
- :mod:`metalib.methods.transfer` — tokenised datasets, nested subsets, learning curves, multi-task heads.
- :mod:`metalib.methods.prompting` — templates, verbalizers, batched label scoring, calibration.
- :mod:`metalib.methods.contrastive` — InfoNCE, and zero-shot classification by label descriptions.
- :mod:`metalib.methods.adapters` — LoRA, IA3, prompt and prefix tuning (``peft``), BitFit.
- :mod:`metalib.methods.distillation` — the KD loss, layer-copy students, stored teacher logits.
- :mod:`metalib.methods.maml` — functional MAML, FOMAML, MetaSGD and ANIL with ``torch.func``.
- :mod:`metalib.methods.protonet` — prototypes, distance logits, an episodically trained head.
- :mod:`metalib.methods.fewshot_heads` — the few-shot head: MAML, multi-task, or fitted on the support set.
"""
