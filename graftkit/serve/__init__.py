"""HTTP service over a run folder: ``create_app(run_dir, settings)`` builds the FastAPI app."""
from graftkit.serve.settings import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def create_app(run_dir, settings=None):
    """Build the FastAPI app for ``run_dir`` (see :func:`graftkit.serve.app.create_app`)."""
    from graftkit.serve.app import create_app as _create

    return _create(run_dir, settings)
