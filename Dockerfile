# Minimal image: the same ops/install the README and CI use, so they cannot drift.
# (Hardening, VA drivers and compose examples come with the deployment issue.)
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/pagecast
COPY pyproject.toml package.json package-lock.json README.md ./
COPY ops ./ops
COPY src ./src
RUN ops/install --runtime && rm -rf /var/lib/apt/lists/* /root/.npm /root/.cache
RUN useradd --system --create-home --uid 10001 pagecast
USER pagecast
ENV PAGECAST_HOST=0.0.0.0 PAGECAST_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)" || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/pagecast/.venv/bin/pagecast"]
CMD ["serve"]
