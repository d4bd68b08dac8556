#!/usr/bin/env bash
# A Wazuh manager or agent from Wazuh's own apt repository, as Wazuh's
# installation guide does it. Nothing here concerns the tap (that is tap.sh).
#
# Environment:
#   WAZUH_ROLE         manager | agent                                   manager
#   WAZUH_MAJOR        4 (packages.wazuh.com, stable) | 5 (pre-release)  4
#   WAZUH_VERSION      a package version to pin, e.g. 4.7.5-1             the newest
#                      (the Vagrantfile pins its 4.x profile to 4.7.5-1)
#   WAZUH_APT_REPO     the apt source line's URL, suite and component     by WAZUH_MAJOR
#   WAZUH_APT_KEY      the repository's signing key                       by WAZUH_MAJOR
#   WAZUH_MANAGER_IP   (agent) the manager to enrol with                  127.0.0.1
#   WAZUH_AGENT_NAME   (agent) the name to enrol under                    the host name
# The manager's settings for the walk-through are manager-settings.sh's.
set -euo pipefail

WAZUH_ROLE=${WAZUH_ROLE:-manager}
WAZUH_MAJOR=${WAZUH_MAJOR:-4}
WAZUH_VERSION=${WAZUH_VERSION:-}
WAZUH_MANAGER_IP=${WAZUH_MANAGER_IP:-127.0.0.1}
WAZUH_AGENT_NAME=${WAZUH_AGENT_NAME:-$(hostname)}

case "$WAZUH_MAJOR" in
4)
  WAZUH_APT_KEY=${WAZUH_APT_KEY:-https://packages.wazuh.com/key/GPG-KEY-WAZUH}
  WAZUH_APT_REPO=${WAZUH_APT_REPO:-https://packages.wazuh.com/4.x/apt/ stable main}
  ;;
5)
  # Wazuh 5.0 is not released on packages.wazuh.com yet: its own 5.0 beta/rc
  # installation guide uses this pre-release repository.
  WAZUH_APT_KEY=${WAZUH_APT_KEY:-https://packages-staging.xdrsiem.wazuh.info/key/GPG-KEY-WAZUH}
  WAZUH_APT_REPO=${WAZUH_APT_REPO:-https://packages-staging.xdrsiem.wazuh.info/pre-release/5.x/apt/ unstable main}
  ;;
*)
  echo "wazuh.sh: WAZUH_MAJOR must be 4 or 5, not '$WAZUH_MAJOR'" >&2
  exit 2
  ;;
esac

step() { printf '==> %s\n' "$*"; }
export DEBIAN_FRONTEND=noninteractive

step "Wazuh $WAZUH_MAJOR.x apt repository: $WAZUH_APT_REPO"
apt-get update -qq
apt-get install -y -qq ca-certificates curl gnupg apt-transport-https
curl -fsSL "$WAZUH_APT_KEY" | gpg --no-default-keyring --keyring gnupg-ring:/usr/share/keyrings/wazuh.gpg --import
chmod 644 /usr/share/keyrings/wazuh.gpg
echo "deb [signed-by=/usr/share/keyrings/wazuh.gpg] $WAZUH_APT_REPO" > /etc/apt/sources.list.d/wazuh.list
apt-get update -qq

pkg() { echo "$1${WAZUH_VERSION:+=$WAZUH_VERSION}"; }

case "$WAZUH_ROLE" in
manager)
  step "wazuh-manager"
  apt-get install -y -qq "$(pkg wazuh-manager)"
  systemctl daemon-reload
  systemctl enable --now wazuh-manager
  systemctl --no-pager --lines=0 status wazuh-manager
  ;;
agent)
  # rsyslog first: Debian 12 logs to the journal only, and the agent's installer
  # adds /var/log/auth.log to what it reads only when the file exists.
  step "rsyslog and openssh-server (failed SSH logins are the walk-through's alert)"
  apt-get install -y -qq rsyslog openssh-server
  systemctl enable --now rsyslog
  step "waiting for the manager's enrolment port $WAZUH_MANAGER_IP:1515 (at most 15 min)"
  ok=
  for _ in $(seq 1 180); do
    if timeout 3 bash -c "echo > /dev/tcp/$WAZUH_MANAGER_IP/1515" 2>/dev/null; then ok=1; break; fi
    sleep 5
  done
  [ -n "$ok" ] || { echo "wazuh.sh: the manager at $WAZUH_MANAGER_IP:1515 never answered" >&2; exit 1; }
  step "wazuh-agent, enrolled with $WAZUH_MANAGER_IP as $WAZUH_AGENT_NAME"
  WAZUH_MANAGER=$WAZUH_MANAGER_IP WAZUH_AGENT_NAME=$WAZUH_AGENT_NAME \
    apt-get install -y -qq "$(pkg wazuh-agent)"
  systemctl daemon-reload
  systemctl enable wazuh-agent
  systemctl restart wazuh-agent
  systemctl --no-pager --lines=0 status wazuh-agent
  ;;
*)
  echo "wazuh.sh: WAZUH_ROLE must be manager or agent, not '$WAZUH_ROLE'" >&2
  exit 2
  ;;
esac
