#!/usr/bin/env bash
# Builds Jaeger's all-in-one (collector with an OTLP receiver, in-memory
# storage and the query API in one process) from the Jaeger Go module into
# bin/jaeger-$VERSION, for the tracing test (server: TestTracesReachJaeger;
# the token server exports OTLP to it, the test reads the traces back
# through the query API). make test builds it. Nothing is built when the
# binary is there already. Progress goes to stderr.
#
# `go install pkg@version` refuses Jaeger's module, whose go.mod has a
# replace directive, so this builds in a throwaway module that requires
# Jaeger and carries the same replace: the versions chosen are exactly
# those of Jaeger's own go.mod.
#
# Usage: hack/jaeger.sh [OUT]   (default bin/jaeger-$VERSION)
set -euo pipefail

VERSION=v1.75.0
# Jaeger's go.mod: replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0
REPLACE=github.com/Shopify/sarama=github.com/Shopify/sarama@v1.33.0
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/jaeger-$VERSION}
say() { printf 'jaeger: %s\n' "$*" >&2; }

if [[ -x $out ]]; then
	exit 0
fi
start=$SECONDS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
say "building github.com/jaegertracing/jaeger/cmd/all-in-one $VERSION -> ${out#"$root"/} (minutes the first time)"
go mod init gatehouse.local/jaegerbuild >/dev/null 2>&1
go mod edit -replace="$REPLACE"
say "  resolving modules (go get)"
go get "github.com/jaegertracing/jaeger/cmd/all-in-one@$VERSION" 2>&1 | grep -v '^go: \(downloading\|added\|upgraded\)' >&2 || true
count=0
GOFLAGS=-buildvcs=false go build -v -o "$tmp/jaeger" github.com/jaegertracing/jaeger/cmd/all-in-one 2>&1 |
	while IFS= read -r line; do
		if [[ $line == *:* || $line == \#* ]]; then
			printf '%s\n' "$line" >&2
			continue
		fi
		count=$((count + 1))
		if ((count % 100 == 0)); then say "  $count packages compiled ($((SECONDS - start))s)"; fi
	done
[[ -x $tmp/jaeger ]] || { say "building jaeger failed"; exit 1; }
mkdir -p "$(dirname "$out")"
mv "$tmp/jaeger" "$out"
say "  jaeger ready in $((SECONDS - start))s"
