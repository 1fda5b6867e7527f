# Build and run linkyard. Used by docker-compose.yml.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p api --bin linkyard

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/linkyard /usr/local/bin/linkyard
WORKDIR /var/lib/linkyard
ENV LINKYARD_ADDR=0.0.0.0:8080 LINKYARD_DATA_DIR=/var/lib/linkyard/data
EXPOSE 8080
CMD ["linkyard", "serve"]
