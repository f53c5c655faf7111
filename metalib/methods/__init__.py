"""Methods of the book, one concept per module; each imports its heavy dependencies itself.

- :mod:`metalib.methods.pretraining` — corpus, WordPiece tokenizer, masked and causal language modelling.
"""
