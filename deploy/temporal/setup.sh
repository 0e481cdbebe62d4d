#!/bin/sh
# Creates the namespace Laneway runs in and registers Laneway's search attributes
# (runs in temporalio/admin-tools). Safe to run again.
#   TEMPORAL_ADDRESS   host:port of the frontend
#   NAMESPACE          the namespace to create
#   SEARCH_ATTRIBUTES  space-separated Name=Type pairs
set -eu
: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}" "${SEARCH_ATTRIBUTES:?}"
ATTEMPTS=${SETUP_ATTEMPTS:-30}

# The frontend accepts connections before its services are ready, and a new namespace takes a
# few seconds to reach every cache, so each step is retried.
retry() {
  attempt=1
  until "$@"; do
    if [ "$attempt" -ge "$ATTEMPTS" ]; then
      echo "gave up after $ATTEMPTS attempts: $*" >&2
      return 1
    fi
    attempt=$((attempt + 1))
    sleep 2
  done
}

ensure_namespace() {
  temporal operator namespace describe --address "$TEMPORAL_ADDRESS" \
    --namespace "$NAMESPACE" >/dev/null 2>&1 ||
    temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE"
}

retry temporal operator cluster health --address "$TEMPORAL_ADDRESS"
retry ensure_namespace
# Creating an attribute that exists with the same type succeeds; with another type it fails.
for pair in $SEARCH_ATTRIBUTES; do
  retry temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" \
    --namespace "$NAMESPACE" --name "${pair%%=*}" --type "${pair#*=}"
done
echo "namespace $NAMESPACE ready with search attributes: $SEARCH_ATTRIBUTES"
