#!/usr/bin/env bash
# Builds the release image of gatehouse for every platform of $PLATFORMS
# (default linux/amd64,linux/arm64) without Docker, with the project's
# image builder (hack/image): the static binary (CGO_ENABLED=0, -trimpath,
# -s -w, the version and commit stamped) at /gatehouse, user 65532,
# Mozilla's CA roots from a pinned Go module, nothing from the host. The
# same commit gives the same digest: the files' times are the epoch, the
# image's creation time is the commit's ($SOURCE_DATE_EPOCH).
#
# Writes $OUT (default bin/release): gatehouse-OS-ARCH binaries, image/
# (an OCI image layout; index.json is the index), image.tar (an OCI archive
# named $IMAGE:$VERSION, for ctr images import) and image.digest. With
# PUSH=1 it also pushes the index to $IMAGE:$VERSION (credentials from
# ~/.docker/config.json) and prints $IMAGE@DIGEST on stdout.
#
# Usage: VERSION=v1.2.3 [PUSH=1] hack/release/image.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
image=${IMAGE:-ghcr.io/gatehouse-dev/gatehouse}
platforms=${PLATFORMS:-linux/amd64,linux/arm64}
out=${OUT:-$root/bin/release}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD 2>/dev/null || echo 0)}
say() { printf 'release-image: %s\n' "$*" >&2; }

"$root/hack/cluster/build.sh" gatehouse-image
mkdir -p "$out"
began=$SECONDS
for p in ${platforms//,/ }; do
	os=${p%%/*}
	arch=${p#*/}
	arch=${arch%%/*}
	say "building gatehouse $version for $p (CGO_ENABLED=0 -trimpath; minutes the first time for a new platform)"
	start=$SECONDS
	count=0
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -v -trimpath -buildvcs=false \
		-ldflags "-s -w -X github.com/gatehouse-dev/gatehouse/internal/version.Version=$version -X github.com/gatehouse-dev/gatehouse/internal/version.Commit=$commit" \
		-o "$out/gatehouse-$os-$arch" ./cmd/gatehouse 2>&1 |
		while IFS= read -r line; do
			if [[ $line == *:* || $line == \#* ]]; then
				printf '%s\n' "$line" >&2
				continue
			fi
			count=$((count + 1))
			if ((count % 250 == 0)); then say "  $p: $count packages compiled ($((SECONDS - start))s)"; fi
		done
	[[ -x "$out/gatehouse-$os-$arch" ]] || { say "building gatehouse for $p failed"; exit 1; }
done
args=(-platform "$platforms" -ca-certs mozilla -zoneinfo=false
	-file "$out/gatehouse-{os}-{arch}:/gatehouse:0755" -user 65532:65532 -entrypoint /gatehouse
	-label "org.opencontainers.image.source=https://github.com/gatehouse-dev/gatehouse"
	-label "org.opencontainers.image.revision=$commit"
	-label "org.opencontainers.image.version=$version"
	-label "org.opencontainers.image.title=gatehouse"
	-oci "$out/image" -oci-archive "$out/image.tar" -tag "$image:$version")
if [[ -n ${PUSH:-} ]]; then
	args+=(-push "$image:$version")
	say "pushing $image:$version"
fi
digest=$("$root/bin/cluster/gatehouse-image" "${args[@]}")
echo "$digest" >"$out/image.digest"
say "$image:$version is $digest ($platforms) in $((SECONDS - began))s; ${out#"$root"/}/image"
if [[ -n ${PUSH:-} ]]; then
	echo "$image@$digest"
fi
