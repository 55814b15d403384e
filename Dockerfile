# The service image: `forecourt`, which carries its migrations. Build: docker build -t forecourt .
FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev libssl-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Plugins ./Plugins
COPY Tests ./Tests
# Embedded into the binary at build time (the EmbedMigrations plugin); the image needs no copy.
COPY migrations ./migrations
RUN swift build -c release --product forecourt --static-swift-stdlib

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 libssl3 ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 forecourt
COPY --from=build /src/.build/release/forecourt /usr/local/bin/forecourt
USER forecourt
EXPOSE 7443
ENTRYPOINT ["forecourt"]
CMD ["serve"]
