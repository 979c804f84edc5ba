# The tweetlambda binary, for docker-compose.yml: a release build of only the
# `tweetlambda` binary, copied into a slim runtime image.
FROM rust:1-bookworm AS build
# librdkafka is built from source by rdkafka-sys (make, a C compiler) and
# linked with the system's OpenSSL and zlib.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The workspace (manifests, lock file, crates, and the SQL schema the
# replayer embeds); .dockerignore leaves out data, scripts and target.
COPY . .
RUN cargo build --release --locked -p tweetlambda --bin tweetlambda \
 && strip target/release/tweetlambda

FROM debian:bookworm-slim
# curl: the health checks of docker-compose.yml.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/tweetlambda tweetlambda \
 && mkdir -p /var/lib/tweetlambda/master /var/lib/tweetlambda/views \
 && chown -R tweetlambda: /var/lib/tweetlambda
COPY --from=build /src/target/release/tweetlambda /usr/local/bin/tweetlambda
USER tweetlambda
WORKDIR /var/lib/tweetlambda
ENTRYPOINT ["tweetlambda"]
CMD ["help"]
