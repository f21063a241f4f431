#!/usr/bin/env bash
# Prints the cluster address of the Service SERVICE in SERVICE_NAMESPACE, which this server reaches: the family
# tool's `restore` tunnels to it over SSH (the backups in the cluster's own storage).
set -euo pipefail
: "${SERVICE:?SERVICE is required}" "${SERVICE_NAMESPACE:?SERVICE_NAMESPACE is required}"
address=$(k3s kubectl get service -n "$SERVICE_NAMESPACE" "$SERVICE" -o 'jsonpath={.spec.clusterIP}') ||
    { echo "service-address: no service $SERVICE_NAMESPACE/$SERVICE" >&2; exit 1; }
[ -n "$address" ] || { echo "service-address: $SERVICE_NAMESPACE/$SERVICE has no cluster address" >&2; exit 1; }
echo "$address"
