# The gatehouse image: one static binary that runs as the operator or the
# token server (`gatehouse operator`, `gatehouse server`).
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) -t gatehouse:dev .

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
# The resourceserver module, which go.mod replaces with ./resourceserver.
COPY resourceserver/go.mod resourceserver/go.sum resourceserver/
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY server/ server/
COPY resourceserver/ resourceserver/
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/gatehouse-dev/gatehouse/internal/version.Version=${VERSION} -X github.com/gatehouse-dev/gatehouse/internal/version.Commit=${COMMIT}" \
      -o /out/gatehouse ./cmd/gatehouse

# distroless static: no shell, no package manager, CA certificates and a
# nonroot user (65532) included.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /gatehouse
USER 65532:65532
ENTRYPOINT ["/gatehouse"]
