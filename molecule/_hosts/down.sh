#!/usr/bin/env bash
# Tear down one test host brought up by up.sh. Safe to run twice or on a half-built host.
set -uo pipefail
name=$1
run=${WECO_TESTHOSTS_RUN:-/run/weco-testhosts}
dir="$run/$name"
if [[ -f "$dir/pid" ]]; then
  pid=$(cat "$dir/pid")
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
fi
ip link del "vh-$name" 2>/dev/null
ip netns del "$name" 2>/dev/null
mountpoint -q "$dir/merged" && umount -l "$dir/merged"
rm -rf "$dir"
exit 0
