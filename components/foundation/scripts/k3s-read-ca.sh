#!/usr/bin/env bash
# Prints the certificate (never the key) of the CA whose secret is K3S_CA_SECRET (namespace/name).
set -euo pipefail
: "${K3S_CA_SECRET:?K3S_CA_SECRET is required}"
pem=$(k3s kubectl get secret -n "${K3S_CA_SECRET%%/*}" "${K3S_CA_SECRET#*/}" -o 'jsonpath={.data.ca\.crt}' | base64 -d)
case $pem in
    "-----BEGIN CERTIFICATE-----"*) printf '%s\n' "$pem" ;;
    *) echo "k3s-read-ca: secret $K3S_CA_SECRET holds no ca.crt" >&2; exit 1 ;;
esac
