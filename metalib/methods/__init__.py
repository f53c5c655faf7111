"""Methods of the book, one concept per module; each imports its heavy dependencies itself.

- :mod:`metalib.methods.pretraining` — corpus, WordPiece tokenizer, masked and causal language modelling.
- :mod:`metalib.methods.transfer` — tokenised datasets, nested subsets, learning curves, multi-task heads.
- :mod:`metalib.methods.prompting` — templates, verbalizers, batched label scoring, calibration.
- :mod:`metalib.methods.contrastive` — InfoNCE, and zero-shot classification by label descriptions.
"""
