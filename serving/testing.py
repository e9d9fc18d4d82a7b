"""``LocalServer``: the real REST server (uvicorn, the same options as ``redheart serve``) in a thread.

For tests and examples on localhost: it picks a free port, starts, waits until ``/readyz`` says the model is
loaded, and on exit shuts down as a signal would (stop accepting, drain, release the model)::

    with LocalServer(ServingSettings(model=path)) as server:
        httpx.post(server.url + "/v1/analyze", json={"text": "..."})
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from .settings import ServingSettings


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalServer:
    """A uvicorn server in a background thread; ``url`` is its base address."""

    def __init__(
        self, settings: ServingSettings, *, ready_timeout_s: float = 120.0, log_level: str = "warning"
    ) -> None:
        import uvicorn

        from .cli import uvicorn_options
        from .rest import create_app

        if settings.port in (0, ServingSettings().port):
            settings = settings.replace(port=free_port(settings.host))
        self.settings = settings
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, **uvicorn_options(settings, log_level)))
        self.url = f"http://{settings.host}:{settings.port}"
        self._ready_timeout_s = ready_timeout_s
        self._thread = threading.Thread(target=self.server.run, name="redheart-local-server", daemon=True)

    def start(self) -> LocalServer:
        self._thread.start()
        deadline = time.monotonic() + self._ready_timeout_s
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError("the server thread stopped while starting (see its log)")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except urllib.error.HTTPError as err:
                body = err.read().decode("utf-8", "replace")
                if "could not be loaded" in body:
                    self.stop()
                    raise RuntimeError(f"the server could not load its model: {body}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"the server at {self.url} was not ready within {self._ready_timeout_s} s")

    def stop(self, timeout_s: float = 60.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout_s)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
