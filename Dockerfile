# A small runtime image of stowaway: built in a Rust stage, shipped on a slim Debian base with
# no compiler. Scan local tarballs by mounting them:
#   docker run --rm -v "$PWD:/work" stowaway scan /work/image.tar
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY signatures ./signatures
COPY benches ./benches
RUN cargo build --release --locked --bin stowaway \
    && strip target/release/stowaway

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin stowaway
COPY --from=build /src/target/release/stowaway /usr/local/bin/stowaway
USER 10001
WORKDIR /work
ENTRYPOINT ["stowaway"]
CMD ["--help"]
