# Builds partner-web, partner-service and superoffice-sim; the runtime image runs as a non-root user.
#
# The runtime image carries stripped binaries. Their debug info (line tables) is kept beside them in the
# `debug-symbols` stage, linked by .gnu_debuglink, for symbolising a backtrace or a profile:
#   docker build --target debug-symbols --output type=local,dest=./symbols .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --workspace --bins \
    && mkdir -p /out /debug \
    && for bin in partner-web partner-service superoffice-sim; do \
         objcopy --only-keep-debug "target/release/$bin" "/debug/$bin.debug" \
         && objcopy --strip-all --add-gnu-debuglink="/debug/$bin.debug" "target/release/$bin" "/out/$bin"; \
       done

FROM scratch AS debug-symbols
COPY --from=build /debug/ /

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
