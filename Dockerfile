# CPU by default:            docker build -t fl-saliency .
# CUDA build of torch:       docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t fl-saliency .
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/fl-saliency
RUN pip install --index-url "$TORCH_INDEX" torch==2.13.0
COPY pyproject.toml README.md requirements.lock ./
COPY fl_saliency ./fl_saliency
RUN pip install ".[all]" -c requirements.lock
COPY *.py ./

RUN useradd --create-home docker
USER docker
WORKDIR /home/docker
ENTRYPOINT []
CMD ["fl-saliency", "--help"]
