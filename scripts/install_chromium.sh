#!/usr/bin/env bash
# Debian's chromium for the labeling page's browser tests (playwright is pointed at /usr/bin/chromium and
# never downloads a browser). Best effort: without apt or root those tests skip with the reason, and
# when apt-get fails its own last lines say why.
set -uo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
command -v apt-get >/dev/null 2>&1 || exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
APT_LOG="$(mktemp)"
if ! { $SUDO apt-get update -qq && $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$APT_LOG" 2>&1; then
    echo "setup.sh: chromium not installed (apt-get failed; the browser tests will skip). apt-get said:" >&2
    tail -n 5 "$APT_LOG" | sed 's/^/    /' >&2
fi
rm -f "$APT_LOG"
exit 0
