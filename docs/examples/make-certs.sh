#!/usr/bin/env bash
# A CA, a NATS server certificate and a client certificate for wazuh-nats-tap.
# Usage: make-certs.sh <nats-server-hostname> [days]
# Then: server.pem, server.key and ca.pem to the NATS server (/etc/nats/, as nats-server.conf names them);
#       to the manager, under the names nats-tap.conf and the docs use (<tls_ca>, <tls_cert>, <tls_key>):
#         install -m 644 -o root ca.pem     /var/ossec/etc/nats-ca.pem
#         install -m 644 -o root client.pem /var/ossec/etc/nats-client.crt
#         install -m 600 -o root client.key /var/ossec/etc/nats-client.key
set -euo pipefail
host=${1:?usage: $0 <nats-server-hostname> [days]}
days=${2:-825}
umask 077
openssl req -x509 -newkey rsa:3072 -nodes -keyout ca.key -out ca.pem -days "$days" -subj "/CN=wazuh-nats CA"
printf 'subjectAltName=DNS:%s\n' "$host" > server.ext
for who in server client; do
  openssl req -newkey rsa:3072 -nodes -keyout "$who.key" -out "$who.csr" -subj "/CN=$([ "$who" = server ] && echo "$host" || echo wazuh-nats-tap)"
  openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$who.pem" -days "$days" \
    $([ "$who" = server ] && echo "-extfile server.ext")
done
rm -f ./*.csr server.ext
chmod 600 ./*.key
echo "ca.pem server.pem server.key client.pem client.key written; keep ca.key offline"
echo "on the manager: ca.pem as etc/nats-ca.pem, client.pem as etc/nats-client.crt, client.key as etc/nats-client.key (chmod 600)"
