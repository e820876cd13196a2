#!/usr/bin/env bash
# Builds the example programs the tutorials run in the cluster into images,
# without Docker, and loads them into the local cluster's containerd (make
# example-images): examples/orders-api as localhost/orders-api:1 and
# examples/workload as localhost/workload:1. Each is a static binary at
# /<name> as the entrypoint, user 65532:65532, on the distroless static
# base's files (hack/image), like the gatehouse image.
#
# Usage: hack/cluster/example-images.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/bin/cluster/images
say() { printf 'example-images: %s\n' "$*" >&2; }

"$root/hack/cluster/build.sh" gatehouse-image
mkdir -p "$out"
if ! "$root/hack/cluster/cluster.sh" status >/dev/null 2>&1; then
	say "no cluster is running: make cluster first"
	exit 1
fi
for name in orders-api workload; do
	began=$SECONDS
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/$name" "./examples/$name")
	"$root/bin/cluster/gatehouse-image" -tag "localhost/$name:1" -out "$out/$name.tar" \
		-file "$out/$name:/$name:0755" -user 65532:65532 -entrypoint "/$name"
	"$root/hack/cluster/cluster.sh" load "$out/$name.tar"
	say "localhost/$name:1 built from examples/$name and loaded in $((SECONDS - began))s"
done
