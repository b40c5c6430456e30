#!/bin/sh
# Write rabbitmq.conf from the environment the official image honours, then run the node.
set -eu
if [ "${1:-}" = rabbitmq-server ]; then
  conf=/etc/rabbitmq/rabbitmq.conf
  {
    echo "# written by docker-entrypoint.sh at container start"
    echo "listeners.tcp.default = 5672"
    echo "management.tcp.port = 15672"
    echo "prometheus.tcp.port = 15692"
    echo "loopback_users.guest = false"
    echo "log.console = true"
    echo "log.file = false"
    [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && echo "default_user = $RABBITMQ_DEFAULT_USER"
    [ -n "${RABBITMQ_DEFAULT_PASS:-}" ] && echo "default_pass = $RABBITMQ_DEFAULT_PASS"
    [ -n "${RABBITMQ_DEFAULT_VHOST:-}" ] && echo "default_vhost = $RABBITMQ_DEFAULT_VHOST"
    true
  } >"$conf"
  if [ "$(id -u)" = 0 ]; then
    chown rabbitmq:rabbitmq "$conf"
    chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
      /usr/lib/rabbitmq/bin/rabbitmq-server
  fi
  exec /usr/lib/rabbitmq/bin/rabbitmq-server
fi
exec "$@"
