#!/usr/bin/env bash
# nats-server from Debian, on 127.0.0.1:4222 (Debian's /etc/nats-server.conf),
# run by Debian's own unit. Core NATS: what the tap's default configuration uses.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
printf '==> %s\n' "nats-server (Debian)"
apt-get update -qq
apt-get install -y -qq nats-server
systemctl enable nats-server
systemctl restart nats-server
systemctl --no-pager --lines=0 status nats-server
