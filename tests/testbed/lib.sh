# shellcheck shell=bash
# Shared by tests/testbed/setup.sh and tests/testbed/nspawn.sh (sourced, not run).

# The machine's Debian mirror for a suite (first URI of the stanza serving it), so that the images and
# the test hosts use the same mirrors as this machine. Usage: apt_mirror SUITE DEFAULT
apt_mirror() {
    local suite="$1" default="$2" found=""
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        found="$(awk -v suite="$suite" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uris = ""; ok = 0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/) { split(substr($i, 6), u, " "); uris = u[1] }
                    if ($i ~ /^Suites:/) { n = split(substr($i, 8), s, " "); for (j = 1; j <= n; j++) if (s[j] == suite) ok = 1 }
                }
                if (ok && uris != "") { print uris; exit }
            }' "$f")"
        [ -z "$found" ] || break
    done
    if [ -z "$found" ] && [ -f /etc/apt/sources.list ]; then
        found="$(awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list)"
    fi
    echo "${found:-$default}"
}
