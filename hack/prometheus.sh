#!/usr/bin/env bash
# Builds Prometheus and promtool from the Prometheus Go module into
# bin/prometheus-$VERSION and bin/promtool-$VERSION, for the alert-rule unit
# tests (promtool test rules) and the dashboard test (a real Prometheus
# scraping a running Gatehouse). Nothing is built when a binary is there
# already. Progress goes to stderr. Built with -tags remove_all_sd: the
# tests scrape static targets, and without the cloud service-discovery
# plugins (AWS, Azure, GCE, Kubernetes, ...) the first build compiles about
# half the packages.
#
# Usage: hack/prometheus.sh [promtool|prometheus]...   (default: both)
set -euo pipefail

VERSION=v0.316.0
TAGS=remove_all_sd
root=$(cd "$(dirname "$0")/.." && pwd)
say() { printf 'prometheus: %s\n' "$*" >&2; }

build() { # name
	local name=$1 out="$root/bin/$1-$VERSION" start=$SECONDS count=0 line tmp
	if [[ -x $out ]]; then
		return 0
	fi
	tmp=$(mktemp -d)
	# shellcheck disable=SC2064 # expand now: tmp is local
	trap "rm -rf '$tmp'" RETURN
	say "go install -tags $TAGS github.com/prometheus/prometheus/cmd/$name@$VERSION -> bin/$name-$VERSION (minutes the first time)"
	GOBIN=$tmp GOFLAGS=-buildvcs=false go install -v -tags "$TAGS" "github.com/prometheus/prometheus/cmd/$name@$VERSION" 2>&1 |
		while IFS= read -r line; do
			if [[ $line == *:* || $line == \#* ]]; then
				printf '%s\n' "$line" >&2
				continue
			fi
			count=$((count + 1))
			if ((count % 100 == 0)); then say "  $name: $count packages compiled ($((SECONDS - start))s)"; fi
		done
	[[ -x $tmp/$name ]] || { say "building $name failed"; exit 1; }
	mkdir -p "$root/bin"
	mv "$tmp/$name" "$out"
	say "  $name ready in $((SECONDS - start))s"
}

names=("$@")
((${#names[@]} > 0)) || names=(promtool prometheus)
for n in "${names[@]}"; do
	case $n in
	promtool | prometheus) build "$n" ;;
	*) say "unknown tool $n (promtool or prometheus)"; exit 2 ;;
	esac
done
