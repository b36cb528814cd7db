"""Applications built on run folders: a sentiment monitor, a customer-service assistant, a recommender.

Each reads only finished run folders (never training configs) and keeps its state in a SQLAlchemy store.
"""
