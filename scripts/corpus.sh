#!/usr/bin/env bash
# Captures nobody here wrote, for test/capture/corpus.test.ts: the test and example captures that Debian's packages
# ship (pathspider's, dpkt's, libtrace's, gopacket's pcapng suite, pcapfix's damaged ones). Downloaded as packages and
# unpacked into .corpus/ (never committed), each package's files under its name. Needs apt-get (Debian or Ubuntu).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.corpus
PKGS=(pathspider python3-dpkt python3-libtrace golang-github-gopacket-gopacket-dev pcapfix)
if [ -f "$dir/SOURCES" ] && [ "$(wc -l < "$dir/SOURCES")" = "${#PKGS[@]}" ]; then exit 0; fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/k8sdiag-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt's download user writes there
if ! (cd "$tmp" && apt-get download -q "${PKGS[@]}" >/dev/null 2>&1); then
  apt-get update -qq
  (cd "$tmp" && apt-get download -q "${PKGS[@]}" >/dev/null)
fi
rm -rf "$dir.new"
mkdir -p "$dir.new"
for deb in "$tmp"/*.deb; do
  pkg=$(dpkg-deb -f "$deb" Package)
  dpkg-deb -x "$deb" "$tmp/$pkg"
  (cd "$tmp/$pkg" && find . -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.pcap.gz' \)) | while read -r f; do
    mkdir -p "$dir.new/$pkg/$(dirname "$f")"
    cp "$tmp/$pkg/$f" "$dir.new/$pkg/$f"
  done
  echo "$pkg $(dpkg-deb -f "$deb" Version)" >> "$dir.new/SOURCES"
done
rm -rf "$dir"
mv "$dir.new" "$dir"
echo "corpus: $(find "$dir" -type f -name '*.pcap*' | wc -l) captures from ${#PKGS[@]} Debian packages in $dir"
