"""The session actors: renderer (Chromium), encoder (FFmpeg), publisher, Cast watcher and the
supervisor that owns them. Thin loops: they feed events to the core's decisions and carry out
what comes back."""
