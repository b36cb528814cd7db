"""HTTP service over a run folder: ``create_app(run_dir, settings)`` builds the FastAPI app."""
from graftkit.serve.settings import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def create_app(run_dir, settings=None):
    """Build the FastAPI app for ``run_dir`` (see :func:`graftkit.serve.app.create_app`)."""
    # lazy: the package's own modules (settings, security) import this facade first; loading the app
    # here at import would start from the top of the serve stack in a half-initialised package
    from graftkit.serve.app import create_app as _create

    return _create(run_dir, settings)
