"""``python -m graftkit``: the same CLI as the ``graftkit`` command (torchrun runs it with ``-m graftkit``)."""
from graftkit.cli import app

if __name__ == "__main__":
    app(prog_name="graftkit")
