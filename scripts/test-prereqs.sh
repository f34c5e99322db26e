#!/usr/bin/env bash
# What `npm test` needs besides node_modules, made ready before jest runs (and by .ci/run, through
# `npm test`): PostgreSQL on 127.0.0.1:5432 (user postgres, no password) and Redis on
# 127.0.0.1:6379, started when they are installed but down; Debian's chromium (/usr/bin/chromium)
# and CJK fonts for the browser tests, installed with apt-get when missing and we are root.
# Quiet when all is there. When something cannot be done, one line says what to install or start,
# and the script exits 1.
set -uo pipefail

say() { printf 'test-prereqs: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
can_apt() { is_root && command -v apt-get >/dev/null 2>&1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { for _ in $(seq 1 "$2"); do "$1" && return 0; sleep 0.5; done; "$1"; }

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    apt-get update -qq >/dev/null 2>&1 || return 1
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

# --- PostgreSQL ---------------------------------------------------------------------------------
pg_up() {
  if command -v pg_isready >/dev/null 2>&1; then pg_isready -h 127.0.0.1 -p 5432 -q; else port_open 5432; fi
}
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    version="$(ls /etc/postgresql | sort -V | tail -n1)"
    say "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    wait_for pg_up 60 || fail "PostgreSQL $version is installed but did not start: start it (as root: pg_ctlcluster $version main start) so that it listens on 127.0.0.1:5432"
  else
    fail "PostgreSQL is not running on 127.0.0.1:5432 and not installed: apt-get install postgresql, and let user postgres connect from 127.0.0.1 without a password (pg_hba.conf: host all all 127.0.0.1/32 trust)"
  fi
fi

# --- Redis --------------------------------------------------------------------------------------
redis_up() {
  if command -v redis-cli >/dev/null 2>&1; then [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; else port_open 6379; fi
}
if ! redis_up; then
  if ! command -v redis-server >/dev/null 2>&1; then
    if can_apt; then
      say "installing redis-server"
      apt_install redis-server || fail "redis-server could not be installed: apt-get install redis-server"
    else
      fail "Redis is not running on 127.0.0.1:6379 and redis-server is not installed: apt-get install redis-server (or start a Redis there)"
    fi
  fi
  say "starting Redis on 127.0.0.1:6379 (in memory)"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null 2>&1 || true
  wait_for redis_up 20 || fail "redis-server did not start on 127.0.0.1:6379: start a Redis there"
fi

# --- chromium and CJK fonts for the browser tests -------------------------------------------------
cjk_fonts() { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh-tw family 2>/dev/null | head -n1)" ]; }
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
cjk_fonts || missing+=(fonts-noto-cjk)
if [ "${#missing[@]}" -gt 0 ]; then
  if can_apt; then
    say "installing ${missing[*]} for the browser tests"
    apt_install "${missing[@]}" fontconfig || fail "could not install ${missing[*]}: apt-get install ${missing[*]}"
    [ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is still missing: apt-get install chromium"
  else
    fail "the browser tests need Debian's chromium (/usr/bin/chromium) and CJK fonts: as root, apt-get install ${missing[*]}"
  fi
fi
exit 0
