"""`graftkit recommend`: rank candidate items for a user's history with a ranking (or embedding) run."""
from graftkit.apps.recommend.ranker import Recommender, blend

__all__ = ["Recommender", "blend"]
