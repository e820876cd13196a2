#!/usr/bin/env bash
# Builds the node side of the local cluster from Go modules into bin/cluster:
# kubelet, kube-controller-manager, kube-scheduler and kube-proxy (hack/node,
# the same k8s.io/kubernetes release as hack/envtest), containerd v2 with its
# runc shim and ctr (hack/containerd), a CoreDNS with only the plugins the
# cluster uses (hack/coredns) and the image builder (hack/image).
#
# Idempotent: each binary has a stamp with the hash of its inputs, and a
# second run with the same inputs does nothing. Progress goes to stderr.
#
# Usage: hack/cluster/build.sh [name...]   (default: all)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/bin/cluster"
mkdir -p "$dir"

say() { printf 'cluster-build: %s\n' "$*" >&2; }

modver() { (cd "$root/hack/$1" && go list -m -f '{{.Version}}' "$2"); }

kube_version=$(modver node k8s.io/kubernetes)
ctrd_version=$(modver containerd github.com/containerd/containerd/v2)

kube_ldflags="-s -w"
minor=$(cut -d. -f2 <<<"${kube_version#v}")
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	kube_ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
ctrd_ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=$ctrd_version -X github.com/containerd/containerd/v2/version.Revision=gomod"

# name module package cgo ldflags tags
targets=(
	"kubelet|node|k8s.io/kubernetes/cmd/kubelet|1|$kube_ldflags|"
	"kube-controller-manager|node|k8s.io/kubernetes/cmd/kube-controller-manager|1|$kube_ldflags|"
	"kube-scheduler|node|k8s.io/kubernetes/cmd/kube-scheduler|1|$kube_ldflags|"
	"kube-proxy|node|k8s.io/kubernetes/cmd/kube-proxy|1|$kube_ldflags|"
	"containerd|containerd|github.com/containerd/containerd/v2/cmd/containerd|0|$ctrd_ldflags|no_btrfs no_devmapper no_zfs"
	"containerd-shim-runc-v2|containerd|github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2|0|$ctrd_ldflags|no_btrfs no_devmapper no_zfs"
	"ctr|containerd|github.com/containerd/containerd/v2/cmd/ctr|0|$ctrd_ldflags|no_btrfs no_devmapper no_zfs"
	"coredns|coredns|.|0|-s -w|"
	"gatehouse-image|image|.|0|-s -w|"
	"pause|image|./pause|0|-s -w|"
)

want=("$@")
selected() {
	((${#want[@]} == 0)) && return 0
	local w
	for w in "${want[@]}"; do [[ $w == "$1" ]] && return 0; done
	return 1
}

build() { # name module package cgo ldflags tags
	local name=$1 module=$2 pkg=$3 cgo=$4 ldflags=$5 tags=$6 start=$SECONDS count=0 line
	local mdir="$root/hack/$module" stamp="$dir/.$1.inputs" inputs
	inputs="$( (cat "$mdir/go.mod" "$mdir/go.sum" "$0"; find "$mdir" -name '*.go' -print0 | sort -z | xargs -0r cat; echo "$cgo|$ldflags|$tags") | sha256sum | cut -d' ' -f1) $(go env GOVERSION)"
	if [[ -x "$dir/$name" && "$(cat "$stamp" 2>/dev/null)" == "$inputs" ]]; then
		say "$name is up to date"
		return 0
	fi
	rm -f "$stamp"
	say "building $name from Go modules (hack/$module; minutes the first time, seconds from the Go build cache)"
	(cd "$mdir" && CGO_ENABLED=$cgo go build -v -tags "$tags" -ldflags "$ldflags" -o "$dir/$name.tmp" "$pkg") 2>&1 |
		while IFS= read -r line; do
			if [[ $line == *:* || $line == \#* ]]; then
				printf '%s\n' "$line" >&2
				continue
			fi
			count=$((count + 1))
			if ((count % 250 == 0)); then say "  $name: $count packages compiled ($((SECONDS - start))s)"; fi
		done
	[[ -x "$dir/$name.tmp" ]] || { say "building $name failed"; exit 1; }
	mv "$dir/$name.tmp" "$dir/$name"
	echo "$inputs" >"$stamp"
	say "  $name ready ($((SECONDS - start))s)"
}

for t in "${targets[@]}"; do
	IFS='|' read -r name module pkg cgo ldflags tags <<<"$t"
	selected "$name" || continue
	build "$name" "$module" "$pkg" "$cgo" "$ldflags" "$tags"
done
