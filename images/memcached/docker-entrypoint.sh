#!/bin/sh
set -e
# As in the official image: bare flags are memcached's.
if [ "${1#-}" != "$1" ]; then set -- memcached "$@"; fi
exec "$@"
