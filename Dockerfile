# headroom: build with the Rust toolchain, run from a distroless image as a non-root user.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin headroom \
    && strip target/release/headroom

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/headroom /usr/local/bin/headroom
COPY config/headroom.toml /etc/headroom/headroom.toml
# Inside a container the API must listen beyond loopback; the file's other keys stay.
ENV HEADROOM__SERVER__LISTEN=0.0.0.0:9187
USER 65532:65532
EXPOSE 9187
ENTRYPOINT ["/usr/local/bin/headroom"]
CMD ["run", "--config", "/etc/headroom/headroom.toml"]
