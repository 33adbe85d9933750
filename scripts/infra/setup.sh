#!/usr/bin/env bash
# Brings up what the test suite and the embedded laboratory need on a machine of this kind:
# Debian packages (Docker Engine, debootstrap, native database servers), a running dockerd,
# and the locally built service images (no registry is reachable, so nothing is pulled).
# Idempotent: each step checks before it works, so a second run only verifies.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
state_dir=${LABTEST_INFRA_DIR:-/var/lib/labtest-infra}
mkdir -p "$state_dir"

say() { printf '[infra] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages -------------------------------------------------------------------------
# Python's PostgreSQL client, SQLAlchemy and Django's dj-database-url, and Rails' ActiveRecord
# with ruby-pg read labtest's URLs in the tests; with Flask and gunicorn they run
# examples/flask-notes on the local runtime. The SSH laboratory's tests start their own sshd
# (test/support/sshd.ts) from openssh-server; the policy below keeps the system one off.
packages=(docker.io debootstrap postgresql mariadb-server redis-server memcached rabbitmq-server
  python3-sqlalchemy python3-psycopg2 python3-dj-database-url ruby-activerecord ruby-pg
  python3-flask gunicorn openssh-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  # Keep package scripts from starting system-wide servers: labtest starts its own, on its own ports.
  policy=/usr/sbin/policy-rc.d
  had_policy=0; [ -e "$policy" ] && had_policy=1
  [ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null; as_root chmod +x "$policy"; }
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  [ $had_policy = 1 ] || as_root rm -f "$policy"
else
  say "Debian packages present"
fi
# The package enables its unit for the next boot; labtest runs its own RabbitMQ nodes.
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet rabbitmq-server 2>/dev/null; then
  say "disabling the system-wide rabbitmq-server"
  as_root systemctl disable --now rabbitmq-server >/dev/null 2>&1
fi

# --- Docker Engine -----------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  say "dockerd running"
else
  say "starting dockerd (log: $state_dir/dockerd.log)"
  as_root bash -c "setsid nohup dockerd >'$state_dir/dockerd.log' 2>&1 < /dev/null &"
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 "$state_dir/dockerd.log" >&2; say "dockerd did not come up in 60 s"; exit 1; }
fi

# --- Images ------------------------------------------------------------------------------------
base=labtest-local/debian:bookworm
if docker image inspect "$base" >/dev/null 2>&1; then
  say "base image $base present"
else
  say "building base image $base with debootstrap (about a minute)"
  rootfs=$(mktemp -d "$state_dir/rootfs.XXXXXX")
  trap 'as_root rm -rf "$rootfs"' EXIT
  as_root debootstrap --variant=minbase bookworm "$rootfs" >"$state_dir/debootstrap.log" 2>&1 \
    || { tail -20 "$state_dir/debootstrap.log" >&2; exit 1; }
  as_root rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  as_root tar -C "$rootfs" -c . | docker import -c 'CMD ["bash"]' - "$base" >/dev/null
  as_root rm -rf "$rootfs"; trap - EXIT
fi

# Each image is rebuilt only when its build context changed: the content hash is a label on the
# image. An image whose Dockerfile asks for host-ca-certificates/ gets the authorities this machine
# trusts besides Debian's, so that it reaches registries the way the host does.
for dir in "$root"/images/*/; do
  name=$(basename "$dir")
  tag=$(cat "$dir/TAG")
  context=$(mktemp -d)
  cp -r "$dir". "$context"
  if grep -q host-ca-certificates "$dir/Dockerfile"; then
    mkdir -p "$context/host-ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$context/host-ca-certificates/" 2>/dev/null || true
  fi
  hash=$(cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
  current=$(docker image inspect -f '{{ index .Config.Labels "labtest.build-hash" }}' "$tag" 2>/dev/null || true)
  if [ "$current" = "$hash" ]; then
    say "image $tag up to date"
  else
    say "building image $tag"
    DOCKER_BUILDKIT=0 docker build -q --label "labtest.build-hash=$hash" -t "$tag" "$context" \
      >"$state_dir/build-$name.log" 2>&1 || { tail -30 "$state_dir/build-$name.log" >&2; rm -rf "$context"; exit 1; }
  fi
  rm -rf "$context"
done
say "ready"
