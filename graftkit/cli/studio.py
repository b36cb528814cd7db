"""`graftkit studio [WORKSPACE]`: the web application over a workspace folder (registered in graftkit/cli/main.py)."""
from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

err = Console(stderr=True)


def studio_cmd(
    workspace: Path = typer.Argument(Path("."), help="Workspace folder: data/, configs/, runs/ (created if missing)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; any address other than loopback needs a "
                             "token in $GRAFTKIT_STUDIO_TOKEN."),
    port: int = typer.Option(7860, min=0, max=65535, help="Port to listen on."),
    max_upload_mb: float = typer.Option(100, min=0.001, help="Largest data file an upload may be, in MiB "
                                        "(a bigger one is refused with 413)."),
):
    """Runs, new runs, live training jobs, comparison and Try in the browser, over one workspace folder."""
    import uvicorn

    from graftkit.apps.studio.access import TOKEN_ENV, check_binding
    from graftkit.apps.studio.app import studio_app

    token = os.environ.get(TOKEN_ENV) or None
    check_binding(host, token)
    app = studio_app(workspace, token=token, max_upload=int(max_upload_mb * 2**20))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    how = " (open /?token=... once with the token)" if token else ""
    err.print(f"graftkit studio over {workspace.resolve()} at http://{shown}:{port}/{how} (Ctrl+C to stop)",
              highlight=False, markup=False, soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
