"""What the studio's routes share (the app keeps one ``Studio`` in ``app.state.studio``)."""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from graftkit.apps.studio.deploy import Exports, Services
from graftkit.apps.studio.heatmap import Explanations
from graftkit.apps.studio.jobs import JobStore
from graftkit.apps.studio.labelq import LabelDesk
from graftkit.apps.studio.runner import JobRunner
from graftkit.apps.studio.tryout import Tryout
from graftkit.apps.studio.workspace import Workspace
from graftkit.errors import GraftkitError


class NotFound(GraftkitError):
    """An unknown run or job (404)."""


@dataclass
class Studio:
    """The workspace, the job table and its runner, the runs loaded for Try and for explanations, the label
    sheets, exports and services."""

    workspace: Workspace
    store: JobStore
    runner: JobRunner
    tryout: Tryout
    max_upload: int
    label: LabelDesk
    exports: Exports
    services: Services
    explanations: Explanations


def studio(request: Request) -> Studio:
    """The app's Studio (a FastAPI dependency)."""
    return request.app.state.studio
