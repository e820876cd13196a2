#!/usr/bin/env bash
# Runs shellcheck on every shell script in the repository (make lint): the
# files git knows (tracked, or new and not ignored) that end in .sh or
# .bash or start with a #! line naming sh or bash, such as .ci/run.
#
# The linter comes from Debian (the shellcheck package; .ci/run installs
# it). On Debian as root this script installs it when it is missing;
# elsewhere it says so and skips, or fails under GATEHOUSE_REQUIRE_ALL=1 as
# every missing test dependency does in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v shellcheck >/dev/null; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		echo "lint: installing shellcheck (apt-get install shellcheck)"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck
	elif [[ -n ${GATEHOUSE_REQUIRE_ALL:-} ]]; then
		echo "lint: shellcheck is not installed (Debian: apt-get install shellcheck)" >&2
		exit 1
	else
		echo "lint: SKIPPED shellcheck: it is not installed (Debian: apt-get install shellcheck)" >&2
		exit 0
	fi
fi

scripts=()
while IFS= read -r -d '' f; do
	[[ -f $f ]] || continue
	case $f in
	*.sh | *.bash) scripts+=("$f") ;;
	*)
		first=$(head -n 1 "$f" 2>/dev/null | tr -d '\0') || true
		if [[ $first =~ ^#!.*[/\ ](ba|da)?sh([[:space:]]|$) ]]; then
			scripts+=("$f")
		fi
		;;
	esac
done < <(git ls-files -z --cached --others --exclude-standard)

echo "lint: shellcheck $(shellcheck --version | awk '/^version:/ {print $2}') on ${#scripts[@]} shell scripts"
shellcheck "${scripts[@]}"
