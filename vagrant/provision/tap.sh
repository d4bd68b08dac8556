#!/usr/bin/env bash
# The tap's part of the provisioning: docs/integration.md, step by step, and
# nothing else. test/vagrant.test.ts runs this very script on a development
# machine against the Wazuh manager simulator, with TAP_SYSTEMD=no and PREFIX,
# UNITDIR, WAZUH_HOME pointing into temporary directories.
#
# Environment (the VM's defaults):
#   TAP_SRC             the checkout to install from    /usr/local/src/wazuh-nats-tap
#   WAZUH_HOME          the manager's home              /var/ossec, else /var/wazuh-manager
#   NATS_URL            <server_url>                    nats://127.0.0.1:4222
#   TAP_METRICS         <metrics>                       127.0.0.1:9464
#   TAP_NODE            <cluster><node_name>            the manager's own node_name, else none
#   TAP_CONTROL_SOCKET  run --control-socket            (the tap's default, /run/wazuh-nats-tap.sock)
#   PREFIX, UNITDIR     as for make install             /usr, /etc/systemd/system
#   TAP_SYSTEMD         yes: enable and start the unit  yes
set -euo pipefail

TAP_SRC=${TAP_SRC:-/usr/local/src/wazuh-nats-tap}
if [ -z "${WAZUH_HOME:-}" ]; then
  if [ -d /var/ossec ]; then WAZUH_HOME=/var/ossec; else WAZUH_HOME=/var/wazuh-manager; fi
fi
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
TAP_METRICS=${TAP_METRICS:-127.0.0.1:9464}
TAP_CONTROL_SOCKET=${TAP_CONTROL_SOCKET:-}
TAP_SYSTEMD=${TAP_SYSTEMD:-yes}
PREFIX=${PREFIX:-/usr}
UNITDIR=${UNITDIR:-/etc/systemd/system}
export PREFIX UNITDIR
BINDIR=${BINDIR:-$PREFIX/sbin}
TAP=$BINDIR/wazuh-nats-tap
CONF=$WAZUH_HOME/etc/nats-tap.conf

step() { printf '==> %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "tap.sh: run as root (the guide's commands are root's)" >&2; exit 1; }
[ -f "$TAP_SRC/Makefile" ] || { echo "tap.sh: no checkout at TAP_SRC=$TAP_SRC" >&2; exit 1; }
[ -f "$WAZUH_HOME/etc/ossec.conf" ] || { echo "tap.sh: no Wazuh manager at WAZUH_HOME=$WAZUH_HOME" >&2; exit 1; }

# --- 1. Requirements ----------------------------------------------------------
# Node.js >= 20.19: Debian 12's own nodejs is 18, so the guide installs Node.js 22
# from NodeSource's apt repository when the one on PATH is older or missing.
node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'
}
if node_ok; then
  step "1. requirements: Node.js $(node --version) is recent enough"
else
  step "1. requirements: Node.js 22 from NodeSource's apt repository"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq ca-certificates curl gnupg
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key | gpg --dearmor --yes -o /etc/apt/keyrings/nodesource.gpg
  echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_22.x nodistro main" > /etc/apt/sources.list.d/nodesource.list
  apt-get update -qq
  apt-get install -y -qq nodejs
  node_ok || { echo "tap.sh: Node.js is still older than 20.19" >&2; exit 1; }
fi
if ! command -v make >/dev/null 2>&1; then
  step "1. requirements: make"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make
fi

# --- 2. Install ---------------------------------------------------------------
step "2. install: make install (from $TAP_SRC)"
make -C "$TAP_SRC" install

# --- 3. Configure -------------------------------------------------------------
# A file of its own: Wazuh refuses a <nats> section in its own ossec.conf.
if [ -z "${TAP_NODE:-}" ]; then
  TAP_NODE=$(sed -n 's:.*<node_name>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</node_name>.*:\1:p' "$WAZUH_HOME/etc/ossec.conf" | head -n 1)
fi
step "3. configure: $CONF"
node_line=
[ -n "$TAP_NODE" ] && node_line="  <cluster><node_name>$TAP_NODE</node_name></cluster>"
umask 077
cat > "$CONF" <<EOF
<!-- wazuh-nats-tap: the <nats> section (docs/configuration.md). Kept out of
     ossec.conf because Wazuh refuses elements it does not know. -->
<ossec_config>
$node_line
  <nats>
    <enabled>yes</enabled>
    <server_url>$NATS_URL</server_url>
    <metrics>$TAP_METRICS</metrics>
  </nats>
</ossec_config>
EOF
umask 022

# What `systemctl edit wazuh-nats-tap` writes: a drop-in that replaces ExecStart.
exec_start="$TAP run --home $WAZUH_HOME --config $CONF"
[ -n "$TAP_CONTROL_SOCKET" ] && exec_start="$exec_start --control-socket $TAP_CONTROL_SOCKET"
install -d -m 0755 "$UNITDIR/wazuh-nats-tap.service.d"
cat > "$UNITDIR/wazuh-nats-tap.service.d/override.conf" <<EOF
[Service]
ExecStart=
ExecStart=$exec_start
EOF

"$TAP" config check --home "$WAZUH_HOME" --config "$CONF"

# --- 4. Start -----------------------------------------------------------------
if [ "$TAP_SYSTEMD" != yes ]; then
  step "4. start: skipped (TAP_SYSTEMD=$TAP_SYSTEMD); the unit would run: $exec_start"
  exit 0
fi
step "4. start: systemctl enable --now wazuh-nats-tap"
systemctl daemon-reload
systemctl enable --now wazuh-nats-tap
# Provisioning again (vagrant provision) installs new code under a running tap: restart it.
systemctl restart wazuh-nats-tap

# --- 5. Verify ----------------------------------------------------------------
step "5. verify: wazuh-nats-tap status"
status_args=()
[ -n "$TAP_CONTROL_SOCKET" ] && status_args=(--control-socket "$TAP_CONTROL_SOCKET")
for _ in $(seq 1 60); do
  if out=$("$TAP" status "${status_args[@]}" 2>/dev/null) && grep -q '^state *attached' <<<"$out"; then
    echo "$out"
    exit 0
  fi
  sleep 1
done
echo "tap.sh: the tap is not attached after 60 s; see: journalctl -u wazuh-nats-tap" >&2
systemctl --no-pager status wazuh-nats-tap >&2 || true
exit 1
