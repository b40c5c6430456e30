#!/bin/sh
# Entry point of every service image: read the JWT keys the compose `keygen` job wrote into
# the shared volumes (public keys for everyone, the private key for the gateway only), export
# them as the settings the services read, then exec the command. Without the volumes (keys
# given in the environment instead) it only execs.
set -eu
if [ -z "${JWT_PUBLIC_KEYS:-}" ] && [ -s /jwt/public/jwt_public_keys.json ]; then
  JWT_PUBLIC_KEYS="$(cat /jwt/public/jwt_public_keys.json)"
  export JWT_PUBLIC_KEYS
fi
if [ -z "${JWT_PRIVATE_KEY:-}" ] && [ -s /jwt/private/jwt_private_key.pem ]; then
  JWT_PRIVATE_KEY="$(cat /jwt/private/jwt_private_key.pem)"
  JWT_KID="$(cat /jwt/private/jwt_kid)"
  export JWT_PRIVATE_KEY JWT_KID
fi
exec "$@"
