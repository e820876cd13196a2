#!/usr/bin/env bash
# Builds the gatehouse image without Docker and loads it into the local
# cluster's containerd (make image). The image is the Dockerfile's
# equivalent: the static binary (CGO_ENABLED=0, -trimpath, the same
# ldflags) at /gatehouse as the entrypoint, user 65532:65532 (nonroot), CA
# certificates and the distroless static base's files (hack/image).
#
# Usage: hack/cluster/image.sh [IMAGE]   (default localhost/gatehouse:dev)
# VERSION and COMMIT, from the Makefile, are stamped into the binary.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
img=${1:-localhost/gatehouse:dev}
version=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=${COMMIT:-$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)}
out=$root/bin/cluster/images
say() { printf 'image: %s\n' "$*" >&2; }

"$root/hack/cluster/build.sh" gatehouse-image
mkdir -p "$out"
began=$SECONDS
say "building the static gatehouse binary $version (CGO_ENABLED=0 -trimpath, as the Dockerfile)"
(cd "$root" && CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X github.com/gatehouse-dev/gatehouse/internal/version.Version=$version -X github.com/gatehouse-dev/gatehouse/internal/version.Commit=$commit" \
	-o "$out/gatehouse" ./cmd/gatehouse)
"$root/bin/cluster/gatehouse-image" -tag "$img" -out "$out/gatehouse.tar" \
	-file "$out/gatehouse:/gatehouse:0755" -user 65532:65532 -entrypoint /gatehouse
say "built $img in $((SECONDS - began))s ($(du -h "$out/gatehouse.tar" | cut -f1), ${out#"$root"/}/gatehouse.tar)"
if "$root/hack/cluster/cluster.sh" status >/dev/null 2>&1; then
	"$root/hack/cluster/cluster.sh" load "$out/gatehouse.tar"
	say "$img is in the cluster's containerd"
else
	say "no cluster is running, so $img was not loaded: make cluster, then make image"
	[[ -z ${GATEHOUSE_REQUIRE_CLUSTER:-} ]] || exit 1
fi
