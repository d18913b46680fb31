# pagecast — renders web pages in headless Chromium, encodes them with FFmpeg, casts to TVs.
# Everything is installed by ops/install, the script the README and CI use, so they cannot drift:
# its --runtime set is FFmpeg, Chromium's headless shell, fonts (emoji, CJK), the VA-API drivers
# and vainfo, the Python env and the pinned players.
# Build: docker build -t pagecast .   Run: ops/docker-compose.yml; docs/deployment.md.
# The base is an argument so that a machine without a registry can build from a local image
# (ops/container); docs/hardware.md says how to add Intel's non-free driver.
#
# Two stages, so that the image holds only what runs (docs/deployment.md has the sizes): the
# players stage needs Node.js and npm only to run `npm ci`; the image takes from it the two
# player files pagecast serves (lowlevel/binaries.py PLAYER_FILES) and their licences.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS players
WORKDIR /opt/pagecast
COPY package.json package-lock.json ./
COPY ops/install ./ops/install
RUN ops/install --only=players \
    && for f in hls.js/dist/hls.min.js shaka-player/dist/shaka-player.compiled.js \
                hls.js/LICENSE hls.js/package.json shaka-player/LICENSE shaka-player/package.json; do \
         install -D -m 644 "node_modules/$f" "/players/node_modules/$f" || exit 1; \
       done

FROM ${BASE_IMAGE}
# true: also AMD's VA-API driver (mesa-va-drivers), which pulls in LLVM: about 150 MB more.
# Intel's drivers (amd64) are always in; docs/hardware.md.
ARG MESA_VA=false

# tini: PID 1 that forwards SIGTERM to pagecast and reaps orphaned children (Chromium's helpers).
# apt-get clean: the downloaded .deb files and apt's caches are not part of what runs.
RUN apt-get update && apt-get install -y --no-install-recommends tini \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# Chromium's packages depend on Mesa's OpenGL drivers (libgl1-mesa-dri, and through it LLVM and
# Z3: ~160 MB), which nothing here loads: pagecast runs Chromium with --disable-gpu (WebGL, if a
# page wants it, is Chromium's own SwiftShader), and FFmpeg's VA-API and QSV load the
# *_drv_video.so drivers. So those files are left out as they are unpacked, the way -slim images
# leave out documentation; the packages stay installed and apt stays consistent.
# With MESA_VA=true, LLVM stays: Mesa's VA driver compiles its shaders with it.
RUN printf 'path-exclude /usr/lib/*/dri/*_dri.so\n' >/etc/dpkg/dpkg.cfg.d/pagecast-no-gl-drivers \
    && if [ "$MESA_VA" != true ]; then \
         printf 'path-exclude /usr/lib/*/libLLVM*\npath-exclude /usr/lib/*/libz3.so*\n' >>/etc/dpkg/dpkg.cfg.d/pagecast-no-gl-drivers; \
       fi

WORKDIR /opt/pagecast
# System packages first, from ops/install alone: editing the sources does not redo this layer.
COPY ops/install ./ops/install
RUN ops/install --runtime --only=system $([ "$MESA_VA" = true ] || echo --no-mesa) \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

COPY pyproject.toml README.md ./
COPY src ./src
RUN ops/install --runtime --only=python \
    && rm -rf /root/.cache \
    && find /opt/pagecast -name __pycache__ -prune -exec rm -rf {} +
COPY --from=players /players/node_modules ./node_modules

# Non-root; in the video and render groups of the image so /dev/dri works where the host's GIDs
# match (Debian: video 44). The host's render GID differs between machines: compose's group_add
# gives the container the host's number (ops/docker-compose.yml).
RUN groupadd --system render 2>/dev/null || true \
    && useradd --system --create-home --home-dir /home/pagecast --uid 10001 \
       --groups video,render pagecast \
    && install -d -o pagecast /home/pagecast/.local /home/pagecast/.local/state /home/pagecast/.local/state/pagecast

USER pagecast
# The instance id (PAGECAST_STATE_DIR's default) lives in /home/pagecast/.local/state/pagecast:
# mount a volume there to keep it across containers (ops/docker-compose.yml does).
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
