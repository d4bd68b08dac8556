#!/usr/bin/env bash
# make install / make uninstall: the executable, the BPF object and shim, the
# runtime node_modules, the man page and the systemd unit. DESTDIR and PREFIX as usual.
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:-install}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr}
BINDIR=${BINDIR:-$PREFIX/sbin}
UNITDIR=${UNITDIR:-/etc/systemd/system}
MANDIR=${MANDIR:-$PREFIX/share/man}
# The product's own tree, removed whole on install and uninstall: derived from PREFIX only, under a
# name of its own. Never from LIBDIR, which make and build environments mean as the system's
# library directory (`make install LIBDIR=/usr/lib` exports it to this script).
PKGLIBDIR=$PREFIX/lib/wazuh-nats-tap

lib=$DESTDIR$PKGLIBDIR
bin=$DESTDIR$BINDIR
unit=$DESTDIR$UNITDIR/wazuh-nats-tap.service
# The unit's Documentation=man:wazuh-nats-tap(8) (man and `systemctl help` read it).
man=$DESTDIR$MANDIR/man8/wazuh-nats-tap.8

# rm -rf of the product's tree only: whatever computed it, a directory not named wazuh-nats-tap is
# refused (and nothing removed).
remove_tree() {
  case "$1" in
  */wazuh-nats-tap) rm -rf -- "$1" ;;
  *) echo "install.sh: refusing to remove '$1': not a wazuh-nats-tap directory" >&2; exit 1 ;;
  esac
}

# The .deb's or .rpm's tree (its bundled Node.js is there): neither replaced nor removed from here.
not_the_packages() {
  if [ -e "$lib/node/bin/node" ]; then
    echo "$action: $PKGLIBDIR is the .deb's or .rpm's (its bundled Node.js is there): remove the package first" \
      "(apt remove / dnf remove wazuh-nats-tap), or $action elsewhere with PREFIX=/usr/local" >&2
    exit 1
  fi
}

case "$action" in
install)
  for f in build/bpf/wdbtap.bpf.o build/lib/libwdbtap.so dist/cli.js; do
    [ -e "$f" ] || { echo "install: $f is missing: run 'make' first" >&2; exit 1; }
  done
  not_the_packages
  remove_tree "$lib"
  install -d -m 0755 "$lib" "$lib/build/bpf" "$lib/build/lib" "$bin" "$(dirname "$unit")" "$(dirname "$man")"
  cp -R dist bin package.json package-lock.json docs "$lib/"
  # The README beside the docs, its links rewritten for that tree (as the package does); the consumer
  # example it links to under docs/examples/consumer; vagrant/ is not installed: named as the source's.
  sed -e 's#](docs/#](#g' -e 's#\[\([^]]*\)\](vagrant/README\.md)#\1 (in the source repository)#g' README.md > "$lib/docs/README.md"
  sed -i 's#\[\([^]]*\)\](\.\./vagrant/README\.md)#\1 (in the source repository)#g' "$lib/docs/integration.md"
  install -d -m 0755 "$lib/docs/examples/consumer/src"
  sed -e 's#](\.\./\.\./docs/#](../../#g' examples/consumer/README.md > "$lib/docs/examples/consumer/README.md"
  install -m 0644 examples/consumer/package.json examples/consumer/tsconfig.json "$lib/docs/examples/consumer/"
  install -m 0644 examples/consumer/src/*.ts "$lib/docs/examples/consumer/src/"
  chmod 0644 "$lib/docs/README.md" "$lib/docs/examples/consumer/README.md"
  install -m 0644 build/bpf/wdbtap.bpf.o "$lib/build/bpf/"
  install -m 0755 build/lib/libwdbtap.so "$lib/build/lib/"
  # Runtime dependencies only, from this checkout's node_modules (no download at install).
  # -H: a node_modules that is a symlink (a git worktree sharing one) is copied, not linked:
  # npm prune below must never reach into the checkout it points to.
  cp -RH node_modules "$lib/"
  (cd "$lib" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
  ln -sfn "$PKGLIBDIR/bin/wazuh-nats-tap.js" "$bin/wazuh-nats-tap"
  sed -e "s#@BINDIR@#$BINDIR#g" -e "s#@DOCDIR@#$PKGLIBDIR/docs#g" packaging/wazuh-nats-tap.service > "$unit"
  chmod 0644 "$unit"
  version=$(node -p 'require("./package.json").version')
  sed -e "s/@VERSION@/$version/" -e "s#@LIBDIR@#$PKGLIBDIR#" -e "s#@DOCDIR@#$PKGLIBDIR/docs#" \
    -e "s#@EXAMPLE@#$PKGLIBDIR/docs/examples/nats-tap.conf#" packaging/wazuh-nats-tap.8 > "$man"
  chmod 0644 "$man"
  if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
  echo "installed: $BINDIR/wazuh-nats-tap, $PKGLIBDIR, $UNITDIR/wazuh-nats-tap.service, $MANDIR/man8/wazuh-nats-tap.8"
  # A package's unit (installed before, or after: .deb /lib, .rpm /usr/lib) is overridden for good by
  # one in /etc, which is where this one goes: the package's unit changes would never take effect.
  for d in /lib/systemd/system /usr/lib/systemd/system; do
    if [ "$d" != "$UNITDIR" ] && [ -f "$DESTDIR$d/wazuh-nats-tap.service" ]; then
      echo "warning: a packaged unit $d/wazuh-nats-tap.service exists: $UNITDIR/wazuh-nats-tap.service overrides it" \
        "(and its updates) until 'make uninstall'; use the package or make install, not both" >&2
    fi
  done
  echo "next: configure <nats> in a file of its own (docs/integration.md, step 3), then: systemctl enable --now wazuh-nats-tap"
  ;;
uninstall)
  if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now wazuh-nats-tap 2>/dev/null || true
  fi
  not_the_packages
  remove_tree "$lib"
  rm -f "$bin/wazuh-nats-tap" "$unit" "$man"
  if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
  echo "uninstalled (the spool under the manager's var/nats-tap is left in place)"
  # Drop-ins are the administrator's (`systemctl edit`, docs/integration.md step 3): kept, and said,
  # since a unit installed later (the package) would run with them, their ExecStart= among them.
  dropins=$DESTDIR$UNITDIR/wazuh-nats-tap.service.d
  if [ -d "$dropins" ]; then
    names=$(for f in "$dropins"/*; do [ ! -e "$f" ] || printf ' %s' "${f##*/}"; done)
    echo "warning: $UNITDIR/wazuh-nats-tap.service.d/ is left in place (your drop-ins:${names:- none}):" \
      "a wazuh-nats-tap unit installed later runs with them; if that is not wanted: rm -r $UNITDIR/wazuh-nats-tap.service.d" >&2
  fi
  ;;
*)
  echo "usage: $0 install|uninstall" >&2
  exit 2
  ;;
esac
