"""Training: the one transformers.Trainer path for every task, plus its callbacks, search and ensembles."""
