# syntax=docker/dockerfile:1
#
# trailwatch container image.
#
#   docker build -t trailwatch .
#   docker run --rm -v trailwatch-state:/var/lib/trailwatch \
#     -v "$PWD/trailwatch.toml:/etc/trailwatch/trailwatch.toml:ro" \
#     -e TRAILWATCH_HTTP_TOKEN -p 127.0.0.1:9464:9464 trailwatch
#
# The config's [metrics] listen must be "0.0.0.0:9464" for the published port to reach
# it. AWS credentials come from the standard chain: environment, a mounted profile, web
# identity (EKS), or the ECS task / EC2 instance role.

############################ builder ############################
FROM rust:1.95-bookworm AS builder

WORKDIR /src

# The toolchain pinned by rust-toolchain.toml, with the wasm target the plugin is built
# for. Its own layer, so that a source change does not download it again.
COPY rust-toolchain.toml ./
RUN rustup toolchain install 1.95.0 --profile minimal --component rustfmt,clippy \
      --target wasm32-unknown-unknown \
 && rustup target add wasm32-unknown-unknown \
 && rustc --version

COPY . .

# Plugin component first (plugins/trailwatch-core-<version>.wasm), then the host.
# Cargo's registry and the target directory are cache mounts, so the results are
# copied out to /out within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    set -eux; \
    cargo run --locked -p xtask -- plugins; \
    cargo build --locked --release -p trailwatch; \
    mkdir -p /out/plugins; \
    cp target/release/trailwatch /out/trailwatch; \
    cp plugins/*.wasm /out/plugins/; \
    ls -l /out /out/plugins

############################ runtime ############################
FROM debian:bookworm-slim

# ca-certificates: TLS to S3, CloudTrail, STS and https sinks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A fixed non-root account (uid/gid 10001), so that volumes and Kubernetes'
# runAsNonRoot can rely on the number.
RUN groupadd --system --gid 10001 trailwatch \
 && useradd --system --uid 10001 --gid trailwatch \
      --home-dir /var/lib/trailwatch --no-create-home --shell /usr/sbin/nologin trailwatch \
 && install -d -o trailwatch -g trailwatch -m 0700 /var/lib/trailwatch /var/cache/trailwatch \
 && install -d -o trailwatch -g trailwatch -m 0750 /var/log/trailwatch \
 && install -d -m 0755 /etc/trailwatch /usr/lib/trailwatch/plugins

COPY --from=builder /out/trailwatch /usr/local/bin/trailwatch
COPY --from=builder /out/plugins/ /usr/lib/trailwatch/plugins/

# Plugins from the image; a newer .wasm can be mounted over this directory and is
# taken between two polls without a restart. XDG_* make the default state and cache
# directories /var/lib/trailwatch and /var/cache/trailwatch when the config sets none.
ENV TRAILWATCH_PLUGIN_DIR=/usr/lib/trailwatch/plugins \
    XDG_STATE_HOME=/var/lib \
    XDG_CACHE_HOME=/var/cache \
    HOME=/var/lib/trailwatch \
    TRAILWATCH_LOG=info

# Checkpoint and journal: keep them across container restarts, or files are read again.
# A named volume takes the directory's owner from the image; a bind-mounted host
# directory must be writable by uid 10001.
VOLUME ["/var/lib/trailwatch"]

# Prometheus /metrics, /healthz, /readyz ([metrics] listen).
EXPOSE 9464

USER 10001:10001

# SIGTERM: the files in flight get 5 s to be acknowledged by the sinks, what was is
# committed, then exit 0 (docker stop's default 10 s is enough).
STOPSIGNAL SIGTERM

ENTRYPOINT ["trailwatch"]
CMD ["--config", "/etc/trailwatch/trailwatch.toml", "run"]
