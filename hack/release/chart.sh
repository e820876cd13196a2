#!/usr/bin/env bash
# Packages the Helm chart for a release: chart version $VERSION without its
# leading "v", appVersion $VERSION itself, so the chart's default image is
# $IMAGE:$VERSION, the tag hack/release/image.sh pushes. Writes
# $OUT/gatehouse-X.Y.Z.tgz (default bin/release) and prints its path. With
# PUSH=oci://REGISTRY/PATH it also pushes the package there (credentials
# from `helm registry login`) and prints the pushed reference with its
# digest.
#
# Usage: VERSION=v1.2.3 HELM=bin/helm-... [PUSH=oci://ghcr.io/gatehouse-dev/charts] hack/release/chart.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
version=${VERSION:?VERSION must be the release tag, e.g. v1.2.3}
helm=${HELM:?HELM must name the helm binary (make helm)}
out=${OUT:-$root/bin/release}
say() { printf 'release-chart: %s\n' "$*" >&2; }

chart_version=${version#v}
if ! [[ $chart_version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ ]]; then
	say "$version is not a release tag (vMAJOR.MINOR.PATCH[-PRERELEASE])"
	exit 2
fi
mkdir -p "$out"
say "helm package charts/gatehouse --version $chart_version --app-version $version"
"$helm" package "$root/charts/gatehouse" --version "$chart_version" --app-version "$version" --destination "$out" >&2
pkg=$out/gatehouse-$chart_version.tgz
if [[ -n ${PUSH:-} ]]; then
	say "helm push $pkg $PUSH"
	"$helm" push "$pkg" "$PUSH" 2>&1 | tee "$out/chart-push.log" >&2
	# "Digest: sha256:..." as helm prints it.
	digest=$(awk '/^Digest:/ {print $2}' "$out/chart-push.log")
	echo "${PUSH#oci://}/gatehouse:$chart_version@$digest"
else
	echo "$pkg"
fi
