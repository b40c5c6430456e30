"""A stand-in service for the launcher's tests: serves GET /ready on HTTP_PORT, stops on SIGTERM.

READY_AFTER_FILE: /ready answers 503 until that file exists (to test readiness waiting).
"""

from __future__ import annotations

import http.server
import os
import signal
import sys
import threading
from pathlib import Path


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        gate = os.environ.get("READY_AFTER_FILE")
        ready = self.path in ("/ready", "/health") and (not gate or Path(gate).exists())
        self.send_response(200 if ready else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["HTTP_PORT"])), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
print("fake service up", flush=True)
server.serve_forever()
server.server_close()
sys.exit(0)
