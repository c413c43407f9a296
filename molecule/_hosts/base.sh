#!/usr/bin/env bash
# Build (once, cached) the Debian 12 root filesystem every test host boots from.
#
# The package list is everything our roles need on a host, because test hosts are
# air-gapped like a customer's: a role can only use what is already installed or what
# the controller ships. The cache key is a hash of this file, so editing the list
# rebuilds the base. Prints the base directory.
set -euo pipefail

cache_root=${WECO_TESTHOSTS_CACHE:-/var/cache/weco-testhosts}
packages=(
  systemd systemd-sysv dbus openssh-server python3 python3-apt sudo
  iproute2 nftables iptables curl ca-certificates procps
  cryptsetup-bin util-linux
  nginx openssl certbot python3-cffi-backend
  rsync
)

key=$(sha256sum "$0" | cut -c1-16)
base="$cache_root/base-$key"
if [[ -f "$base/.complete" ]]; then
  echo "$base"
  exit 0
fi

mirror=$(grep -hoP '^(deb\s+|URIs:\s*)\Khttps?://\S+' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
  | grep -v security | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$cache_root"
rm -rf "$base.tmp"
debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
  bookworm "$base.tmp" "$mirror" >&2
# Each target gets its own host keys and machine id at first boot.
rm -f "$base.tmp"/etc/ssh/ssh_host_*
: > "$base.tmp/etc/machine-id"
# Services our roles configure are started by the roles, not at image boot.
chroot "$base.tmp" systemctl disable nginx >&2 || true
# No target has a console to log in on; do not wait for one.
chroot "$base.tmp" systemctl mask console-getty.service getty@.service systemd-networkd-wait-online.service >&2 || true
apt_clean() { rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*; }
apt_clean "$base.tmp"
touch "$base.tmp/.complete"
mv "$base.tmp" "$base"
echo "$base"
