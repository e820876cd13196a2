#!/usr/bin/env bash
# Builds Ory Hydra for the peer benchmark (make bench-peers, hack/bench
# -peer hydra): usage hack/hydra.sh [OUT] [VERSION], default bin/hydra and
# v2.3.0. Never part of make test.
#
# Hydra is built from a throwaway module outside the repository (it is not
# a dependency of Gatehouse and stays out of go.mod), with the replace
# directive Hydra's own go.mod carries for pop (replace directives apply
# only in the main module), and with the sqlite tag: its memory storage
# (DSN "memory") is an in-memory SQLite, which needs cgo and a C compiler.
# A build whose stamp (OUT.version) names the version is kept.
set -euo pipefail

out=${1:-bin/hydra}
version=${2:-v2.3.0}
pop_replace='github.com/gobuffalo/pop/v6=github.com/ory/pop/v6@v6.2.1-0.20241121111754-e5dfc0f3344b'

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
if [[ -x $out && "$(cat "$out.version" 2>/dev/null)" == "$version sqlite" ]]; then
	echo "hydra.sh: $out is Ory Hydra $version (with SQLite) already"
	exit 0
fi
if ! command -v cc >/dev/null; then
	# Hydra's SQLite needs cgo. On Debian as root, install the compiler;
	# elsewhere say what is missing.
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		echo "hydra.sh: installing a C compiler for Hydra's SQLite (cgo): apt-get install gcc"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc
	else
		echo "hydra.sh: a C compiler (cc) is needed for Hydra's SQLite (cgo); install gcc" >&2
		exit 1
	fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
run() { echo "+ $*"; "$@"; }
echo "hydra.sh: building Ory Hydra $version into $out, in the throwaway module $work"
run go mod init hydrabuild
run go mod edit -replace "$pop_replace"
run env GOFLAGS=-mod=mod go get -tool "github.com/ory/hydra/v2@$version"
run env GOFLAGS=-mod=mod CGO_ENABLED=1 go build -tags sqlite,sqlite_omit_load_extension -o "$out" github.com/ory/hydra/v2
echo "$version sqlite" >"$out.version"
echo "hydra.sh: built $out"
