#!/usr/bin/env bash
# Print the path of the SSH key the controller uses for test hosts (made once per boot).
set -euo pipefail
run=${WECO_TESTHOSTS_RUN:-/run/weco-testhosts}
key="$run/id_ed25519"
mkdir -p "$run"
if [[ ! -f "$key" ]]; then
  ssh-keygen -q -t ed25519 -N '' -C weco-testhosts -f "$key.tmp"
  mv "$key.tmp.pub" "$key.pub"
  mv "$key.tmp" "$key"
fi
echo "$key"
