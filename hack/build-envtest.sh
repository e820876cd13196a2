#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, etcd, kubectl) from Go
# modules into bin/k8s/<version>-<os>-<arch>, because envtest's release
# binaries cannot be downloaded here. Idempotent: a stamp records the inputs
# of the last build, and a second run with the same inputs does nothing.
#
# Progress goes to stderr; the assets directory is the only line on stdout,
# so `export KUBEBUILDER_ASSETS=$(hack/build-envtest.sh)` works.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
module="$root/hack/envtest"
kube_version=$(cd "$module" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
kube_version=${kube_version#v}
dir="$root/bin/k8s/${kube_version}-$(go env GOOS)-$(go env GOARCH)"
stamp="$dir/.inputs"
inputs="$(cat "$module/go.mod" "$module/go.sum" "$module/etcd/main.go" "$0" | sha256sum | cut -d' ' -f1) $(go env GOVERSION)"

say() { printf 'envtest: %s\n' "$*" >&2; }

if [[ -x "$dir/kube-apiserver" && -x "$dir/etcd" && -x "$dir/kubectl" && "$(cat "$stamp" 2>/dev/null)" == "$inputs" ]]; then
	say "kube-apiserver, etcd and kubectl $kube_version are up to date in ${dir#"$root"/}"
	echo "$dir"
	exit 0
fi

mkdir -p "$dir"
rm -f "$stamp"
# The staging modules' version package reports v0.0.0 unless told otherwise;
# stamp the real release so `kubectl version` and /version tell the truth.
minor=$(cut -d. -f2 <<<"$kube_version")
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=v$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

build() { # name version package
	local name=$1 version=$2 pkg=$3 start=$SECONDS count=0 line
	say "building $name $version from Go modules (the first build takes about 4 minutes on 2 cores; later ones come from the Go build cache)"
	# -v names each package as it compiles; turn that into a heartbeat.
	(cd "$module" && go build -v -ldflags "$ldflags" -o "$dir/$name" "$pkg") 2>&1 |
		while IFS= read -r line; do
			if [[ $line == *:* || $line == \#* ]]; then
				printf '%s\n' "$line" >&2 # a compiler message, not a package name
				continue
			fi
			count=$((count + 1))
			if ((count % 250 == 0)); then
				say "  $name: $count packages compiled ($((SECONDS - start))s)"
			fi
		done
	[[ -x "$dir/$name" ]] || { say "building $name failed"; exit 1; }
	say "  $name ready ($((SECONDS - start))s)"
}

build etcd "$(cd "$module" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)" ./etcd
build kube-apiserver "v$kube_version" k8s.io/kubernetes/cmd/kube-apiserver
build kubectl "v$kube_version" k8s.io/kubernetes/cmd/kubectl

echo "$inputs" >"$stamp"
say "done: KUBEBUILDER_ASSETS=${dir}"
echo "$dir"
