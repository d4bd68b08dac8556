#!/usr/bin/env bash
# Installs what the build and the tests need, only when something is missing,
# so that `make demo` and `make test` work on a fresh machine and stay quiet
# on a ready one. System packages come from Debian; the rest from npm.
# `--test` (make test, CI) adds what only the tests need: strace checks the
# simulator's syscalls; shellcheck, ruby and systemd-analyze check vagrant/'s
# scripts, its Vagrantfile and the installed unit (test/vagrant.test.ts);
# libclang-rt-dev fuzzes the shim's parsing under the sanitizers; btrfs-progs
# makes the btrfs a home is captured on (test/capture-btrfs.test.ts).
# nats-server stays in the base set: `make demo` runs one.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have clang       || need+=(clang)
have llc         || need+=(llvm)
have bpftool     || need+=(bpftool)
have nats-server || need+=(nats-server)
have gcc         || need+=(build-essential)
have make        || need+=(make)
have openssl     || need+=(openssl)
[ -f /usr/include/bpf/libbpf.h ] || need+=(libbpf-dev)
[ -f /usr/include/gelf.h ]       || need+=(libelf-dev)
# `--package` (make package) and `--test` (make test, which builds and checks the
# packages): dpkg-deb, dpkg-shlibdeps and rpmbuild make them, lintian checks the .deb,
# cpio unpacks the .rpm's payload.
if [ "${1:-}" = --package ] || [ "${1:-}" = --test ]; then
  have dpkg-shlibdeps || need+=(dpkg-dev)
  have rpmbuild       || need+=(rpm)
  have lintian        || need+=(lintian)
  have cpio           || need+=(cpio)
fi
if [ "${1:-}" = --test ]; then
  have strace     || need+=(strace)
  have shellcheck || need+=(shellcheck)
  have ruby       || need+=(ruby)
  have systemd-analyze || need+=(systemd)
  # libFuzzer and the sanitizers' runtimes, for clang (test/shim-fuzz.test.ts).
  [ -f "$(clang -print-resource-dir 2>/dev/null)/lib/linux/libclang_rt.fuzzer-x86_64.a" ] || need+=(libclang-rt-dev)
  have mkfs.btrfs || need+=(btrfs-progs)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
    exit 3
  fi
  echo "  deps   apt-get install ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
# A node_modules that is a link (a worktree or a clone sharing another checkout's) is checked, never
# reinstalled: npm ci empties the directory the link points to, under every checkout sharing it, and
# a fresh clone's package-lock.json is always newer than it.
if [ -L node_modules ]; then
  if [ ! -f node_modules/.package-lock.json ] || ! node -e '
    const want = require("./package-lock.json").packages, have = require("./node_modules/.package-lock.json").packages;
    const stale = Object.keys(want).filter((k) => k !== "" && !want[k].optional && have[k]?.version !== want[k].version);
    process.exit(stale.length ? 1 : 0);'; then
    echo "node_modules is a link to $(readlink -f node_modules), whose packages are not this package-lock.json's:" \
      "not reinstalled through the link; run npm ci there" >&2
    exit 1
  fi
elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "  deps   npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
