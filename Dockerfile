# Guichet service image: non-root, models and index on volumes, healthcheck on /healthz.
#
#   docker build -t guichet .
#   docker run --rm -v guichet-models:/models guichet guichet models fetch --speech   # once, needs PyPI
#   docker run --rm -v guichet-models:/models -v guichet-index:/index guichet guichet ingest corpora/demo
#   docker run -p 8000:8000 -v guichet-models:/models -v guichet-index:/index -v guichet-data:/data guichet
#   docker run --rm -it -v guichet-data:/data guichet guichet staff add accueil           # staff console account
#   add -e GUICHET_LLM_BACKEND=llama_server to the serving run for several turns decoded together at peak hours
#
# torch comes from PyTorch's CPU index when it is reachable (small, CPU only); otherwise from PyPI (a larger build
# that also runs on CPU).
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    GUICHET_MODELS_DIR=/models GUICHET_INDEX_DIR=/index HF_HUB_OFFLINE=1 \
    GUICHET_FEEDBACK_DIR=/data/feedback GUICHET_VALIDATED_ANSWERS_FILE=/data/validated-answers.jsonl \
    GUICHET_CACHE_DIR=/data/cache GUICHET_STAFF_DIR=/data/staff \
    GUICHET_LLM_SERVER_PATH=/opt/guichet/llama-server

RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ make cmake curl espeak-ng \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot bot
COPY ingestion ingestion
COPY eval eval
COPY guichet guichet
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && if curl -fsS --max-time 10 -o /dev/null "$TORCH_INDEX/torch/"; then \
      /opt/venv/bin/pip install --index-url "$TORCH_INDEX" torch==2.13.0; \
    else /opt/venv/bin/pip install torch==2.13.0; fi \
 && /opt/venv/bin/pip install -e .
# llama.cpp's server, for GUICHET_LLM_BACKEND=llama_server (several turns decoded together), from the same sources
RUN /opt/venv/bin/guichet models build-server
COPY prompts prompts
COPY config config
COPY corpora corpora
COPY models models

RUN useradd --create-home --uid 10001 guichet \
 && mkdir -p /models /index /data && chown guichet:guichet /models /index /data
USER guichet
ENV PATH=/opt/venv/bin:$PATH
VOLUME ["/models", "/index", "/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["guichet", "serve", "--host", "0.0.0.0", "--port", "8000"]
