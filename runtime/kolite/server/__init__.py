"""``kolite serve``: HTTP serving with dynamic batching (needs ``pip install 'kolite[serve]'``).

Nothing heavy is imported here: ``kolite.server.cli`` must load without FastAPI installed so that
``kolite serve`` can explain which extra to install.
"""

from __future__ import annotations

__all__ = ["create_app"]


def create_app(*args: object, **kwargs: object) -> object:
    """See ``kolite.server.app.create_app``."""
    from kolite.server.app import create_app as _create_app

    return _create_app(*args, **kwargs)  # type: ignore[arg-type]
