"""Test infrastructure: a local page server and a pagecast service running in-process."""

from __future__ import annotations

import http.server
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

PAGES = Path(__file__).parent / "pages"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Test pages plus the ways a real dashboard server fails."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/missing":
            return self._send(404, b"<h1>Not Found</h1>")
        if path == "/broken":
            return self._send(500, b"<h1>Internal Server Error</h1>")
        if path == "/ha/lovelace":
            self.send_response(302)
            self.send_header("Location", "/auth/authorize?response_type=code&client_id=x")
            self.end_headers()
            return
        if path == "/auth/authorize":
            return self._send(200, b"<html><body><form>Log in</form></body></html>")
        if path == "/hang":
            time.sleep(30)
            return
        file = PAGES / path.lstrip("/")
        if path.endswith(".html") and file.is_file():
            return self._send(200, file.read_bytes())
        return self._send(404, b"no such page")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass


@contextmanager
def page_server():
    from pagecast.bench import serve_http

    with serve_http(_Handler, "test-page-server") as url:
        yield url


def ffmpeg_fmp4(seconds: float, fps: int, size: str = "160x90", keyframes: str = "expr:gte(t,n_forced*1)") -> bytes:
    """Real FFmpeg fragmented-MP4 output, H.264 + AAC like the encoder's (keyframe every second
    by default; fragments of ~100 ms rather than the encoder's one per frame, for fewer of them)."""
    return subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error",
            "-f", "lavfi", "-i", f"testsrc2=s={size}:r={fps}",
            "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-t", str(seconds),
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-force_key_frames", keyframes, "-c:a", "aac",
            "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
            "-frag_duration", "100000", "pipe:1",
        ],
        check=True, capture_output=True,
    ).stdout
