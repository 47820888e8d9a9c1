# syntax=docker/dockerfile:1
#
# Mosaic's container image: `mosaic` (the gateway) and `mock-bank` (the demo's backends) on a
# distroless glibc base, running as the non-root user 65532.
#
#   docker build -t mosaic:local .
#   docker run --rm -p 8080:8080 mosaic:local demo        # the demo: mock bank + gateway
#   docker run --rm -p 8080:8080 -p 9090:9090 \
#     -e MOSAIC_CUSTOMERS_URL=http://customers:4001 ... mosaic:local   # `mosaic serve`
#
# Stages: chef (toolchain + cargo-chef) -> planner (recipe of the dependency graph) -> builder
# (dependencies cooked in their own layer, then the sources) -> runtime. Changing a source file
# rebuilds only the last cargo step; changing Cargo.toml/Cargo.lock re-cooks the dependencies.
#
# scripts/container-test.sh builds and runs this file's final stage (from the last FROM on) on a
# locally made base, so keep every file the runtime needs COPYed in that stage.

ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.78

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
ARG CARGO_CHEF_VERSION
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /build

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /build/recipe.json recipe.json
# The dependencies of `mosaic` (which include every dependency of `mock-bank`): cached until the
# manifests or the lock file change.
RUN cargo chef cook --release --locked --recipe-path recipe.json --package mosaic
COPY . .
RUN cargo build --release --locked -p mosaic -p mosaic-mock-bank \
    && install -D -m 0755 -t /out/bin target/release/mosaic target/release/mock-bank

# A static busybox gives the shell-less runtime two things: the entrypoint's `sh` and the
# HEALTHCHECK's `wget` (1 MB, no package manager, no libc of its own to patch).
FROM busybox:1.37.0-musl AS busybox

# ---- runtime: everything below is what runs (and what scripts/container-test.sh rebuilds) ----
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="mosaic" \
      org.opencontainers.image.description="Mosaic: a GraphQL backend-for-frontend gateway over REST services, declared in SDL" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.vendor="Mosaic" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=busybox /bin/busybox /usr/local/bin/busybox
COPY --from=builder /out/bin/ /usr/local/bin/
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/docker-entrypoint
# The default config and schema; mount a directory (or single files) over /etc/mosaic to replace them.
COPY schema/mosaic.toml schema/bank.graphql /etc/mosaic/
# The example operations beside it: the config's `[server] warmup = ["examples"]` compiles them
# before /readyz turns 200 (a mount over /etc/mosaic hides them; a missing one only logs a warning).
COPY schema/examples/ /etc/mosaic/examples/

ENV MOSAIC_CONFIG=/etc/mosaic/mosaic.toml \
    MOSAIC_LISTEN=0.0.0.0:8080 \
    MOSAIC_ADMIN_LISTEN=0.0.0.0:9090 \
    MOSAIC_LOG_FORMAT=json \
    MOSAIC_LOG=info \
    OTEL_SERVICE_NAME=mosaic

# distroless's `nonroot`; numeric so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
WORKDIR /home/nonroot

# 8080: GraphQL, playground, /livez /readyz /healthz. 9090: the admin listener (/metrics).
EXPOSE 8080 9090

# Ready = serving and not draining (503 while shutting down). The `mock-bank` command has no
# gateway on 8080: docker-compose.yml gives that service its own healthcheck.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/readyz"]

# `mosaic` handles SIGTERM itself (drain, then graceful stop); the entrypoint execs it as PID 1.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/docker-entrypoint"]
CMD ["serve"]
