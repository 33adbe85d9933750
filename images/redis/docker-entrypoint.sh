#!/usr/bin/env bash
# The official image builds Redis with protected mode off and runs it as the redis user.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ] || [ "${1##*.}" = conf ]; then set -- redis-server "$@"; fi

if [ "$1" = redis-server ]; then
  case " $* " in *" --protected-mode "*) ;; *) set -- "$@" --protected-mode no ;; esac
  if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi

exec "$@"
