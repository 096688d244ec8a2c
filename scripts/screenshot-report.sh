#!/usr/bin/env bash
# Renders an HTML report in headless Chromium (Debian package `chromium`) and saves a PNG screenshot,
# to check the page as a person sees it. Not part of `npm test`.
#   scripts/screenshot-report.sh report.html [report.png]
set -euo pipefail
html=$(realpath "$1")
png=${2:-${1%.html}.png}
command -v chromium >/dev/null || { echo "install Debian's chromium first: apt-get install -y chromium" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size=1200,1900 --screenshot="$(realpath -m "$png")" "file://$html" 2>/dev/null
echo "$png"
