# Builds partner-web, partner-service and superoffice-sim; the runtime image runs as a non-root user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --workspace --bins \
    && mkdir -p /out \
    && cp target/release/partner-web target/release/partner-service target/release/superoffice-sim /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin partner
WORKDIR /app
COPY --from=build /out/ /usr/local/bin/
COPY config /app/config
USER partner
ENV RUST_LOG=info
CMD ["partner-web"]
