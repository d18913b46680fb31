"""A threaded HTTP server on loopback for the length of a block: the benchmark's pages, the
tests' page and media servers."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


@contextlib.contextmanager
def serve_http(handler, name: str) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 (any free port) for the block; yields its base URL."""
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
