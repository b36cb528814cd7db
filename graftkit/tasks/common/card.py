"""The model card's task part for tasks whose runs are plain transformers folders used from the command line."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from graftkit.tasks.capabilities import CardMetadata


class StandardCard(CardMetadata):
    """Pipeline tag from ``hub_pipeline``; usage: ``graftkit predict`` (or ``command``) and the transformers class
    that loads the folder."""

    #: the Hub pipeline tag of the task's runs (None: none fits)
    hub_pipeline: ClassVar[str | None] = None
    #: the command the card shows, and the input it is shown with
    command: ClassVar[str] = "predict"
    example_input: ClassVar[str] = "your text here"

    @property
    def pipeline_tag(self) -> str | None:
        return self.hub_pipeline

    def usage(self, run_path: Path) -> list[str]:
        cls = self.task.model_class
        model_class = getattr(getattr(cls, "transformers_class", cls), "__name__", "AutoModel")
        return ["```bash", f"graftkit {self.command} {run_path} \"{self.example_input}\"", "```", "",
                "The folder is a plain transformers model folder as well:", "", "```python",
                f"from transformers import {model_class}",
                f"model = {model_class}.from_pretrained('{run_path}')", "```", ""]

    def notes(self, results: dict) -> list[str]:
        return []
