#!/usr/bin/env bash
# Install what building and testing Shoal needs on Debian 12 (as root), skipping what is there.
set -euo pipefail
PKGS=(build-essential pkg-config meson ninja-build libssl-dev libinih-dev libcmocka-dev
      postgresql-15 postgresql-client-15 python3-pytest python3-psycopg)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
