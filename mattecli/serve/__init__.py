"""``matte serve``: the model behind a small local HTTP API and web page.

One process loads the model once; a single worker thread owns it and runs every model call, so requests
queue (boundedly) instead of fighting over the CPU or GPU, and requests for images of the same size that are
waiting together go through the network as one batch. :mod:`mattecli.serve.app` is the web layer (Starlette,
from the optional ``serve`` extra); :mod:`mattecli.serve.worker` and :mod:`mattecli.serve.render` need only
the base install.

Example::

    from mattecli import Matter
    from mattecli.serve import ServeSettings, create_app
    app = create_app(Matter(), ServeSettings(queue_size=8))   # an ASGI app: uvicorn.run(app)
"""

from __future__ import annotations

from mattecli.lazy_exports import lazy_exports

__all__ = ["ServeSettings", "create_app"]
# The web layer (and so Starlette) is imported only when it is asked for.
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "app"))
