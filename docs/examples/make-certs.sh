#!/usr/bin/env bash
# A CA, a NATS server certificate and a client certificate for wazuh-nats-tap.
# Usage: make-certs.sh <nats-server-hostname> [days]
# Then: server.pem/server.key/ca.pem to the NATS server (nats-server.conf),
#       ca.pem, client.pem, client.key to the manager (<tls_ca>, <tls_cert>, <tls_key>).
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
