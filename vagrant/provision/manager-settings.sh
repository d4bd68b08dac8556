#!/usr/bin/env bash
# The VM's own choices in the Wazuh manager's ossec.conf, for the walk-through;
# none of them concerns the tap, which changes nothing in Wazuh:
#   - <agents_disconnection_time> 1m: monitord marks a silent (killed) agent
#     disconnected after one to two minutes instead of 10–30;
#   - vulnerability detection and the indexer connector off: no Wazuh indexer
#     runs here; they would only log errors and download feeds.
# Then the manager restarts to read them. test/vagrant.test.ts runs this on
# copies of Wazuh's default configuration with WAZUH_RESTART=no.
#
# Environment:
#   WAZUH_CONF                the file            /var/ossec/etc/ossec.conf, else /var/wazuh-manager/etc/ossec.conf
#   WAZUH_DISCONNECTION_TIME  the value           1m
#   WAZUH_RESTART             yes: restart it     yes
set -euo pipefail

if [ -z "${WAZUH_CONF:-}" ]; then
  WAZUH_CONF=/var/ossec/etc/ossec.conf
  [ -f "$WAZUH_CONF" ] || WAZUH_CONF=/var/wazuh-manager/etc/ossec.conf
fi
WAZUH_DISCONNECTION_TIME=${WAZUH_DISCONNECTION_TIME:-1m}
WAZUH_RESTART=${WAZUH_RESTART:-yes}

[ -f "$WAZUH_CONF" ] || { echo "manager-settings.sh: no $WAZUH_CONF" >&2; exit 1; }
printf '==> %s\n' "$WAZUH_CONF: agents_disconnection_time $WAZUH_DISCONNECTION_TIME, no vulnerability detection, no indexer"

if grep -q '<agents_disconnection_time>' "$WAZUH_CONF"; then
  sed -i "s|<agents_disconnection_time>[^<]*</agents_disconnection_time>|<agents_disconnection_time>$WAZUH_DISCONNECTION_TIME</agents_disconnection_time>|" "$WAZUH_CONF"
elif grep -q '<global>' "$WAZUH_CONF"; then
  sed -i "0,/<global>/s|<global>|<global>\n    <agents_disconnection_time>$WAZUH_DISCONNECTION_TIME</agents_disconnection_time>|" "$WAZUH_CONF"
else
  printf '<ossec_config>\n  <global>\n    <agents_disconnection_time>%s</agents_disconnection_time>\n  </global>\n</ossec_config>\n' \
    "$WAZUH_DISCONNECTION_TIME" >> "$WAZUH_CONF"
fi
# Only the <enabled> directly inside these blocks (4.8+ and older names).
for block in vulnerability-detection vulnerability-detector indexer; do
  sed -i "/^[[:space:]]*<$block>/,/^[[:space:]]*<\/$block>/ s|<enabled>yes</enabled>|<enabled>no</enabled>|" "$WAZUH_CONF"
done

if [ "$WAZUH_RESTART" = yes ]; then
  systemctl restart wazuh-manager
  systemctl --no-pager --lines=0 status wazuh-manager
fi
