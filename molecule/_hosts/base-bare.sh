#!/usr/bin/env bash
# Build (once, cached) the BARE Debian 12 root filesystem that install tests boot from.
#
# base.sh's image already holds what our roles install; that proves a role's behaviour
# but not an install. This flavour holds only what a minimal Debian 12 server has
# (systemd, sshd, python3 for Ansible): no nginx, no PostgreSQL, no rsync, no nftables.
# Everything else must come from what the controller ships (scripts/build-offline,
# which also computes its Debian package set against this very root). The cache key
# is a hash of this file. Prints the base directory.
set -euo pipefail

cache_root=${WECO_TESTHOSTS_CACHE:-/var/cache/weco-testhosts}
packages=(systemd systemd-sysv dbus openssh-server python3 iproute2 ca-certificates)

key=$(sha256sum "$0" | cut -c1-16)
base="$cache_root/bare-$key"
if [[ -f "$base/.complete" ]]; then
  echo "$base"
  exit 0
fi

mirror=$(grep -hoP '^(deb\s+|URIs:\s*)\Khttps?://\S+' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
  | grep -v security | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$cache_root"
# Two callers (a scenario and the offline build) may race to build it: one builds.
exec 9>"$cache_root/.bare.lock"
flock 9
if [[ -f "$base/.complete" ]]; then echo "$base"; exit 0; fi
rm -rf "$base.tmp"
debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
  bookworm "$base.tmp" "$mirror" >&2
rm -f "$base.tmp"/etc/ssh/ssh_host_*
: > "$base.tmp/etc/machine-id"
chroot "$base.tmp" systemctl mask console-getty.service getty@.service systemd-networkd-wait-online.service >&2 || true
rm -rf "$base.tmp"/var/cache/apt/archives/*.deb "$base.tmp"/var/lib/apt/lists/*
touch "$base.tmp/.complete"
mv "$base.tmp" "$base"
echo "$base"
