"""graftkit: fine-tune pretrained transformers on your own labelled data."""
__version__ = "0.1.0"
