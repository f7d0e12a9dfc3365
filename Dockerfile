# Multi-stage build of the five meshpulse binaries, static, run as non-root.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/meshpulse ./cmd/meshpulse \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ingestor ./cmd/ingestor \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/scorer ./cmd/scorer \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/openlineage ./cmd/openlineage \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/catalog ./cmd/catalog

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ingestor"]
