#!/usr/bin/env bash
# Bring up one systemd-booted Debian 12 test host under systemd-nspawn.
#
#   up.sh NAME INDEX [--bind=/dev/loopN ...]
#
# The target boots from an overlay on the cached base image (base.sh), in its own
# network namespace joined to the controller by one veth pair: 10.200.INDEX.1 here,
# 10.200.INDEX.2 in the target. There is no route beyond the veth: test hosts are
# air-gapped, as a customer's are. Extra arguments go to systemd-nspawn.
# Prints the target's address once sshd answers and systemd has finished booting.
# WECO_TESTHOSTS_BASE=bare boots the bare flavour (base-bare.sh) used by install tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=$1 index=$2
shift 2
[[ $name =~ ^[a-z0-9-]{1,12}$ ]] || { echo "up.sh: name must be 1-12 of [a-z0-9-]: $name" >&2; exit 2; }
[[ $index =~ ^[0-9]+$ && $index -ge 1 && $index -le 254 ]] || { echo "up.sh: index must be 1-254" >&2; exit 2; }

run=${WECO_TESTHOSTS_RUN:-/run/weco-testhosts}
dir="$run/$name"
# Two hosts on one index would share an address: refuse, naming the host that holds it
# (a benchmark killed with SIGTERM leaves its hosts up).
for held in "$run"/*/index; do
  [[ -e $held && $held != "$dir/index" && $(cat "$held") == "$index" ]] || continue
  echo "up.sh: index $index is taken by test host $(basename "$(dirname "$held")") (down.sh NAME frees it)" >&2
  exit 2
done
case ${WECO_TESTHOSTS_BASE:-base} in
  base) base=$("$here/base.sh") ;;
  bare) base=$("$here/base-bare.sh") ;;
  *) echo "up.sh: WECO_TESTHOSTS_BASE must be base or bare" >&2; exit 2 ;;
esac
key=$("$here/key.sh")
if [[ -e "$dir" ]]; then "$here/down.sh" "$name"; fi
mkdir -p "$dir"/{upper,work,merged}
echo "$index" > "$dir/index"

# A failure part-way leaves nothing behind.
trap '"$here/down.sh" "$name" >/dev/null 2>&1' ERR

mount -t overlay overlay -o "lowerdir=$base,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged"
ip netns add "$name"
ip link add "vh-$name" type veth peer name "vt-$name"
ip link set "vt-$name" netns "$name"
ip addr add "10.200.$index.1/24" dev "vh-$name"
ip link set "vh-$name" up
ip netns exec "$name" sh -c "ip link set lo up; ip addr add 10.200.$index.2/24 dev vt-$name; \
  ip link set vt-$name up; ip route add default via 10.200.$index.1"

root="$dir/merged"
ssh-keygen -A -f "$root" >/dev/null
echo "$name" > "$root/etc/hostname"
install -d -m 700 "$root/root/.ssh"
install -m 600 "$key.pub" "$root/root/.ssh/authorized_keys"

setsid systemd-nspawn -q -D "$root" --register=no --keep-unit -b --machine="$name" \
  --network-namespace-path="/run/netns/$name" --capability=CAP_NET_ADMIN "$@" \
  </dev/null >"$dir/console.log" 2>&1 &
echo $! > "$dir/pid"

address="10.200.$index.2"
ssh_opts=(-q -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o ConnectTimeout=2)
for _ in $(seq 1 150); do
  if ssh "${ssh_opts[@]}" "root@$address" true 2>/dev/null; then break; fi
  kill -0 "$(cat "$dir/pid")" 2>/dev/null || { echo "up.sh: $name did not boot:" >&2; tail "$dir/console.log" >&2; exit 1; }
  sleep 0.2
done
state=$(ssh "${ssh_opts[@]}" "root@$address" systemctl is-system-running --wait || true)
case $state in
  running|degraded) ;;
  *) echo "up.sh: $name is $state" >&2; exit 1 ;;
esac
echo "$address"
