#!/usr/bin/env bash
# Builds oauth2-proxy, the relying party the e2e suite puts in front of an
# app (test/e2e/oidc_rp_proxy_test.go), from its Go module into
# bin/oauth2-proxy-$VERSION, and prints that path. The version is pinned:
# the test reads the headers and flags of this release. Nothing is built
# when the binary is there already.
set -euo pipefail

VERSION=v7.15.6
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin/oauth2-proxy-$VERSION"
if [ -x "$out" ]; then
	echo "$out"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "oauth2-proxy: go install github.com/oauth2-proxy/oauth2-proxy/v7@$VERSION -> $out" >&2
GOBIN="$tmp" go install "github.com/oauth2-proxy/oauth2-proxy/v7@$VERSION" >&2
mkdir -p "$root/bin"
mv "$tmp/oauth2-proxy" "$out"
echo "$out"
