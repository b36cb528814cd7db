"""graftkit studio: one local web application over a workspace folder (data, configs, runs, jobs).

``workspace`` keeps every path inside the workspace, ``access`` the binding and token rules, ``runs`` reads run
folders, ``forms`` turns the pydantic config models into a form and validates it as the CLI does, ``jobs`` and
``runner`` queue ``graftkit train`` subprocesses (state in SQLite through SQLAlchemy), ``app`` is the FastAPI
factory and ``page_*`` the page (plain HTML + JS, no external assets).
"""
