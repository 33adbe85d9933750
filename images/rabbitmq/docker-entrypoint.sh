#!/usr/bin/env bash
# Honours the official image's interface: RABBITMQ_DEFAULT_USER, RABBITMQ_DEFAULT_PASS and
# RABBITMQ_DEFAULT_VHOST make the first boot's account and vhost (guest/guest and / otherwise),
# and the server runs as the rabbitmq account with its data in /var/lib/rabbitmq.
set -Eeuo pipefail

if [ "$1" = rabbitmq-server ]; then
  conf=/etc/rabbitmq/conf.d/20-default-account.conf
  : >"$conf"
  # rabbitmq.conf takes a value up to the end of its line: one with a newline cannot be written.
  for pair in "default_user=${RABBITMQ_DEFAULT_USER:-}" "default_pass=${RABBITMQ_DEFAULT_PASS:-}" \
    "default_vhost=${RABBITMQ_DEFAULT_VHOST:-}"; do
    key=${pair%%=*} value=${pair#*=}
    [ -n "$value" ] || continue
    case "$value" in *$'\n'*) echo "error: $key must be a single line" >&2; exit 1 ;; esac
    printf '%s = %s\n' "$key" "$value" >>"$conf"
  done
  chown rabbitmq:rabbitmq "$conf" && chmod 600 "$conf"
  # Made before the server starts, so a CLI tool run early cannot make a cookie of its own.
  cookie=/var/lib/rabbitmq/.erlang.cookie
  [ -s "$cookie" ] || (umask 077 && tr -dc 'A-Z' </dev/urandom | head -c 32 >"$cookie")
  if [ "$(id -u)" = 0 ]; then
    chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$@"
  fi
fi

exec "$@"
