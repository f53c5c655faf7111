"""Methods of the book, one concept per module; each imports its heavy dependencies itself.

- :mod:`metalib.methods.pretraining` — corpus, WordPiece tokenizer, masked and causal language modelling.
- :mod:`metalib.methods.transfer` — tokenised datasets, nested subsets, learning curves, multi-task heads.
"""
