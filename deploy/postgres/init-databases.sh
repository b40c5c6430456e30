#!/bin/sh
# Database per service: one database and one login role per service, each owning only its own
# database (no service can read another's tables). Run once by the postgres image on an empty
# data directory (/docker-entrypoint-initdb.d). Passwords are development values, overridable
# from the environment of the postgres container.
set -eu

create() {  # database role password
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE $2 LOGIN PASSWORD '$3';
CREATE DATABASE $1 OWNER $2;
REVOKE ALL ON DATABASE $1 FROM PUBLIC;
SQL
}

create users user_service "${USERS_DB_PASSWORD:-user-service-dev}"
create orders order_service "${ORDERS_DB_PASSWORD:-order-service-dev}"
create payments payment_service "${PAYMENTS_DB_PASSWORD:-payment-service-dev}"
create catalog catalog_service "${CATALOG_DB_PASSWORD:-catalog-service-dev}"
