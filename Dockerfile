# Multi-stage build: compile with the full toolchain, ship a slim image with just the binary.
# The image needs DATABASE_URL (it carries no PostgreSQL of its own); see compose.yaml.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY openapi openapi
RUN cargo build --release --locked && strip target/release/rapport

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/rapport --create-home rapport
COPY --from=build /src/target/release/rapport /usr/local/bin/rapport
USER rapport
WORKDIR /var/lib/rapport
ENV RAPPORT_LISTEN=0.0.0.0:8080 \
    RAPPORT_DATA_DIR=/var/lib/rapport \
    RAPPORT_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["rapport", "healthcheck"]
ENTRYPOINT ["rapport"]
CMD ["serve"]
