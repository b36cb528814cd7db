"""Customer-service assistant: intent + FAQ retrieval + an out-of-scope decision + handoff, with sessions."""
from graftkit.apps.assistant.config import AssistantConfig, load_assistant_config
from graftkit.apps.assistant.pipeline import Assistant

__all__ = ["Assistant", "AssistantConfig", "load_assistant_config"]
