# Builds the alertsync binary into a small runtime image.
# docker build -t alertsync .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X github.com/alertsync/alertsync/internal/cli.Version=${VERSION}" -o /out/alertsync ./cmd/alertsync

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /nonexistent alertsync
COPY --from=build /out/alertsync /usr/local/bin/alertsync
USER 10001
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/alertsync"]
