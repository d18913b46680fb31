# pagecast — renders web pages in headless Chromium, encodes them with FFmpeg, casts to TVs.
# Everything is installed by ops/install, the script the README and CI use, so they cannot drift:
# its --runtime set is FFmpeg, Chromium's headless shell, fonts (emoji, CJK), the VA-API drivers
# (Intel iHD + i965, AMD mesa) and vainfo, the Python env and the pinned players.
# Build: docker build -t pagecast .   Run: ops/docker-compose.yml; docs/deployment.md.
# The base is an argument so that a machine without a registry can build from a local image
# (ops/container); docs/hardware.md says how to add Intel's non-free driver.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

# tini: PID 1 that forwards SIGTERM to pagecast and reaps orphaned children (Chromium's helpers).
RUN apt-get update && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/pagecast
COPY pyproject.toml package.json package-lock.json README.md ./
COPY ops ./ops
COPY src ./src
RUN ops/install --runtime \
    && rm -rf /var/lib/apt/lists/* /root/.npm /root/.cache \
    && find /opt/pagecast -name __pycache__ -prune -exec rm -rf {} +

# Non-root; in the video and render groups of the image so /dev/dri works where the host's GIDs
# match (Debian: video 44). The host's render GID differs between machines: compose's group_add
# gives the container the host's number (ops/docker-compose.yml).
RUN groupadd --system render 2>/dev/null || true \
    && useradd --system --create-home --home-dir /home/pagecast --uid 10001 \
       --groups video,render pagecast

USER pagecast
# Chromium's own sandbox needs user namespaces, which Docker's default seccomp profile refuses;
# the container is the sandbox here. (Set it true if your runtime allows it.)
ENV PAGECAST_HOST=0.0.0.0 \
    PAGECAST_PORT=8000 \
    PAGECAST_CHROMIUM_SANDBOX=false \
    PAGECAST_RUNTIME_DIR=/tmp/pagecast \
    PYTHONUNBUFFERED=1
EXPOSE 8000

# /health answers while the service runs; PAGECAST_PORT may be changed at run time.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/pagecast/.venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PAGECAST_PORT', '8000'), timeout=4)"]

# SIGTERM: pagecast stops every session (Chromium, FFmpeg, giving the TVs back) within
# PAGECAST_SHUTDOWN_TIMEOUT (8 s); give it more than that before SIGKILL: docker stop -t 15,
# compose stop_grace_period: 15s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/pagecast/.venv/bin/pagecast"]
CMD ["serve"]
