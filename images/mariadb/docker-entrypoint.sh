#!/usr/bin/env bash
# Honours the official images' interface: MARIADB_*/MYSQL_ROOT_PASSWORD, *_ALLOW_EMPTY_ROOT_PASSWORD,
# *_RANDOM_ROOT_PASSWORD, *_DATABASE, *_USER, *_PASSWORD and /docker-entrypoint-initdb.d.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then set -- mariadbd "$@"; fi

env_of() { local m="MARIADB_$1" y="MYSQL_$1"; printf '%s' "${!m:-${!y:-}}"; }
sql_string() { local s=${1//\\/\\\\}; s=${s//\'/\\\'}; printf "'%s'" "$s"; }
sql_ident() { printf '`%s`' "${1//\`/\`\`}"; }

if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld /var/lib/mysql
  if [ ! -d /var/lib/mysql/mysql ]; then
    root_password=$(env_of ROOT_PASSWORD)
    if [ -z "$root_password" ] && [ -n "$(env_of RANDOM_ROOT_PASSWORD)" ]; then
      root_password=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)
      echo "GENERATED ROOT PASSWORD: $root_password"
    fi
    if [ -z "$root_password" ] && [ -z "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-${MYSQL_ALLOW_EMPTY_PASSWORD:-}}" ]; then
      echo 'error: database is uninitialized and password option is not specified' >&2
      echo '  You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD' >&2
      exit 1
    fi
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
      --auth-root-authentication-method=normal >/dev/null
    socket=/run/mysqld/init.sock
    mariadbd --user=mysql --skip-networking --socket="$socket" &
    pid=$!
    for _ in $(seq 1 60); do mariadb-admin --socket="$socket" ping >/dev/null 2>&1 && break; sleep 0.5; done
    pw=$(sql_string "$root_password")
    {
      echo "SET @@SESSION.SQL_LOG_BIN=0;"
      echo "DELETE FROM mysql.user WHERE user='' OR (user='root' AND host NOT IN ('localhost'));"
      echo "DELETE FROM mysql.proxies_priv WHERE host NOT IN ('localhost');"
      echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $pw;"
      echo "CREATE USER 'root'@'%' IDENTIFIED BY $pw;"
      echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
      database=$(env_of DATABASE)
      [ -z "$database" ] || echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$database");"
      user=$(env_of USER)
      if [ -n "$user" ]; then
        echo "CREATE USER $(sql_string "$user")@'%' IDENTIFIED BY $(sql_string "$(env_of PASSWORD)");"
        [ -z "$database" ] || echo "GRANT ALL ON $(sql_ident "$database").* TO $(sql_string "$user")@'%';"
      fi
      echo "FLUSH PRIVILEGES;"
    } | mariadb --socket="$socket" -uroot
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sh) echo "running $f"; . "$f" ;;
        *.sql) echo "running $f"; mariadb --socket="$socket" -uroot -p"$root_password" ${database:+"$database"} < "$f" ;;
        *) [ -e "$f" ] && echo "ignoring $f" ;;
      esac
    done
    kill "$pid"; wait "$pid" || true
    echo 'MariaDB init process done. Ready for start up.'
  fi
  exec "$@" --user=mysql
fi

exec "$@"
