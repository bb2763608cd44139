# Starbox appliance image: the same install and build steps as `make up` (appliance/install.sh),
# with the sample catalogs built into the image so a container is ready in seconds.
FROM python:3.11-slim-bookworm

ENV STARBOX_HOME=/var/lib/starbox \
    STARBOX_PG_HOST=127.0.0.1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /opt/starbox
COPY . /opt/starbox

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN ./appliance/install.sh \
    && rm -rf /var/lib/apt/lists/* \
    && .venv/bin/starbox up --no-foreground \
    && .venv/bin/starbox down \
    && rm -rf "$STARBOX_HOME/build"

EXPOSE 5433 8400 8888 8866
STOPSIGNAL SIGINT
CMD [".venv/bin/starbox", "up"]
