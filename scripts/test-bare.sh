#!/usr/bin/env bash
# npm test as on a machine without the optional Debian packages: every program those packages install is hidden
# (a private mount namespace binds /dev/null over each, so running one fails as if it were not there), and CI is
# unset, so the tests that need one skip and say why. Run as root (the mount namespace needs it).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(conntrack iptables iproute2 dnsmasq-base nftables ethtool musl-tools tcpdump tshark wireshark-common bind9-dnsutils dnsutils groff-base bpftrace)
hide=()
for p in "${PKGS[@]}"; do
  while IFS= read -r f; do
    [ -e "$f" ] && [ ! -d "$f" ] && hide+=("$(readlink -f "$f")")
  done < <(dpkg -L "$p" 2>/dev/null | grep -E '/s?bin/' || true)
done
[ "${#hide[@]}" -gt 0 ] || { echo "none of the optional packages is installed: plain npm test"; exec env -u CI npm test; }
printf '%s\n' "${hide[@]}" | sort -u > "${TMPDIR:-/tmp}/k8sdiag-bare-hidden.$$"
exec env -u CI unshare --mount --propagation private bash -c '
  while IFS= read -r f; do mount --bind /dev/null "$f"; done < "$0"
  rm -f "$0"
  echo "hidden: $(wc -l < /proc/self/mounts) mounts; e.g. $(command -v tcpdump || echo tcpdump): $(tcpdump --version >/dev/null 2>&1 && echo runs || echo gone)"
  npm test -- --reporter=default --reporter=json
' "${TMPDIR:-/tmp}/k8sdiag-bare-hidden.$$"
