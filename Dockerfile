# A small runtime image of stowaway on a slim Debian base with no compiler. Scan local tarballs
# by mounting them:
#   docker run --rm -v "$PWD:/work" stowaway scan /work/image.tar
#
# The default target builds stowaway from source in a Rust stage (`docker build -t stowaway .`).
# The release workflow (.github/workflows/release.yml) builds the `release` target instead: the
# same runtime stage around the binaries it has just built and checksummed, laid out as
# dist/<arch>/stowaway with Docker's names for the architectures (amd64, arm64), so the
# published image runs exactly the released binary, and its arm64 variant needs no emulated
# Rust build.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY signatures ./signatures
COPY benches ./benches
RUN cargo build --release --locked --bin stowaway \
    && strip target/release/stowaway

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin stowaway
USER 10001
WORKDIR /work
ENTRYPOINT ["stowaway"]
CMD ["--help"]

FROM runtime AS release
ARG TARGETARCH
COPY dist/${TARGETARCH}/stowaway /usr/local/bin/stowaway

# Last, so that a plain `docker build` builds it.
FROM runtime AS source
COPY --from=build /src/target/release/stowaway /usr/local/bin/stowaway
