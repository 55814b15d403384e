-- Hardening (docs/security.md): track.lookup limits per group and per principal, purges of
-- expired rows, the revocation watcher's view of keys, a foreign key the timeline statistics
-- lacked, and who may connect to the database (and so LISTEN or NOTIFY on its channels).

-- track.lookup failures are counted per portal scope and vin_last8: a portal key of one group
-- counts under its group, a portal key of every group under NULL. One group's portal can no
-- longer lock out another group's customer.
ALTER TABLE forecourt.track_lookup_failures
    ADD COLUMN dealer_group_id uuid REFERENCES forecourt.dealer_groups (id);
ALTER TABLE forecourt.track_lookup_failures DROP CONSTRAINT track_lookup_failures_pkey;
ALTER TABLE forecourt.track_lookup_failures
    ADD CONSTRAINT track_lookup_failures_key UNIQUE NULLS NOT DISTINCT (dealer_group_id, vin_last8);
CREATE INDEX track_lookup_failures_window ON forecourt.track_lookup_failures (window_started_at);
-- Read by (scope, vin_last8) with IS NOT DISTINCT FROM, which the unique index cannot serve.
CREATE INDEX track_lookup_failures_vin ON forecourt.track_lookup_failures (vin_last8);
DROP POLICY portal ON forecourt.track_lookup_failures;
CREATE POLICY portal ON forecourt.track_lookup_failures TO forecourt_app
    USING (forecourt.current_scope() = 'portal' AND vin_last8 = forecourt.current_vin_last8()
        AND dealer_group_id IS NOT DISTINCT FROM NULLIF(current_setting('forecourt.portal_group', true), '')::uuid);

-- Failed lookups per portal key (the principal), whatever the VIN: a budget that bounds how
-- many guesses one key can make across many VINs. dealer_group_id is NULL for global keys.
CREATE TABLE forecourt.track_lookup_budgets (
    principal_id uuid PRIMARY KEY,
    dealer_group_id uuid REFERENCES forecourt.dealer_groups (id),
    window_started_at timestamptz NOT NULL,
    failures integer NOT NULL,
    FOREIGN KEY (dealer_group_id, principal_id) REFERENCES forecourt.api_keys (dealer_group_id, id)
);
CREATE INDEX track_lookup_budgets_window ON forecourt.track_lookup_budgets (window_started_at);
ALTER TABLE forecourt.track_lookup_budgets ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY portal ON forecourt.track_lookup_budgets TO forecourt_app
    USING (forecourt.current_scope() = 'portal' AND principal_id = forecourt.current_principal());
CREATE POLICY operator ON forecourt.track_lookup_budgets TO CURRENT_USER USING (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON forecourt.track_lookup_budgets TO forecourt_app;

-- Purges (scope 'maintenance', run by every instance): only rows past their retention are
-- visible to it, so no setting of the service can delete a younger one. The windows here
-- are the least the code uses (docs/protocol.md, "tracking"; idempotency keys: 24 hours).
CREATE POLICY maintenance_read ON forecourt.track_lookup_failures FOR SELECT TO forecourt_app
    USING (forecourt.current_scope() = 'maintenance' AND window_started_at < now() - interval '15 minutes');
CREATE POLICY maintenance_purge ON forecourt.track_lookup_failures FOR DELETE TO forecourt_app
    USING (forecourt.current_scope() = 'maintenance' AND window_started_at < now() - interval '15 minutes');
CREATE POLICY maintenance_read ON forecourt.track_lookup_budgets FOR SELECT TO forecourt_app
    USING (forecourt.current_scope() = 'maintenance' AND window_started_at < now() - interval '15 minutes');
CREATE POLICY maintenance_purge ON forecourt.track_lookup_budgets FOR DELETE TO forecourt_app
    USING (forecourt.current_scope() = 'maintenance' AND window_started_at < now() - interval '15 minutes');
CREATE POLICY maintenance_read ON forecourt.idempotency_keys FOR SELECT TO forecourt_app
    USING (forecourt.current_scope() = 'maintenance' AND created_at < now() - interval '24 hours');
CREATE POLICY maintenance_purge ON forecourt.idempotency_keys FOR DELETE TO forecourt_app
    USING (forecourt.current_scope() = 'maintenance' AND created_at < now() - interval '24 hours');

-- The revocation watcher (scope 'revocations') sees keys revoked in the last ten minutes, of
-- every group, so that open sessions of a revoked key end within seconds (docs/protocol.md, "keys").
CREATE POLICY revocations ON forecourt.api_keys FOR SELECT TO forecourt_app
    USING (forecourt.current_scope() = 'revocations' AND revoked_at > now() - interval '10 minutes');
CREATE INDEX api_keys_revoked_at ON forecourt.api_keys (revoked_at) WHERE revoked_at IS NOT NULL;

-- A stage duration belongs to an order of its group.
DELETE FROM forecourt.stage_durations s
WHERE NOT EXISTS (SELECT 1 FROM forecourt.orders o WHERE o.dealer_group_id = s.dealer_group_id AND o.id = s.order_id);
ALTER TABLE forecourt.stage_durations
    ADD CONSTRAINT stage_durations_order_fkey FOREIGN KEY (dealer_group_id, order_id)
    REFERENCES forecourt.orders (dealer_group_id, id);

-- PostgreSQL has no privilege on LISTEN or NOTIFY: any role that can connect to the database
-- can use any of its channels. So connecting is restricted to the service's and the analysts'
-- roles (and the owner), where the migrating role may change the database's privileges; when
-- it may not, the operator does it (docs/operations.md). What this cannot stop (an analyst's
-- session sending NOTIFY) is handled by the service: docs/security.md, "Notifications".
DO $$
BEGIN
    IF pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER')
        OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database());
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO forecourt_app, forecourt_analyst', current_database());
    ELSE
        RAISE NOTICE 'cannot restrict CONNECT on database %: run REVOKE CONNECT ON DATABASE % FROM PUBLIC as its owner',
            current_database(), current_database();
    END IF;
END
$$;
