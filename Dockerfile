# headroom: build with the Rust toolchain, run from a distroless image as a non-root user.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# The workspace's test-only crates: cargo reads them to resolve the workspace; only the
# headroom binary is built.
COPY tests/sandbox ./tests/sandbox
COPY tests/demo ./tests/demo
RUN cargo build --release --locked --bin headroom \
    && strip target/release/headroom \
    && mkdir -p /out/state

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/headroom /usr/local/bin/headroom
COPY config/headroom.toml /etc/headroom/headroom.toml
# The pager's state file (open incidents, undelivered events): keep it on a volume.
COPY --from=build --chown=65532:65532 /out/state /var/lib/headroom
VOLUME ["/var/lib/headroom"]
# Inside a container the API must listen beyond loopback; the file's other keys stay.
ENV HEADROOM__SERVER__LISTEN=0.0.0.0:9187 \
    HEADROOM__STATE__PATH=/var/lib/headroom/state.json
USER 65532:65532
EXPOSE 9187
ENTRYPOINT ["/usr/local/bin/headroom"]
CMD ["run", "--config", "/etc/headroom/headroom.toml"]
