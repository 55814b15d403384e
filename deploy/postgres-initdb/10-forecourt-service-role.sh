#!/bin/sh
# Run once by the postgres image when it creates its data directory (docker-entrypoint-initdb.d):
# the login role the service connects as, a member of forecourt_app and nothing more
# (docs/operations.md, "The database roles"). forecourt_app is made here, as migration 0001
# would make it (0001 accepts a role that exists), so the login can be granted it at once.
# The password comes from FORECOURT_SERVICE_PASSWORD, passed to psql as a variable (quoted by psql).
set -eu
psql -v ON_ERROR_STOP=1 -v service_password="$FORECOURT_SERVICE_PASSWORD" \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE forecourt_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE forecourt_service LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT
    PASSWORD :'service_password';
GRANT forecourt_app TO forecourt_service;
SQL
