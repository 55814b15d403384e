-- Grants and policies of the database (docs/analytics.md, "Access"; docs/security.md): who may
-- read what, for the service's role, the analysts' role and the group-limited analysts. Run by
-- scripts/test with pg_prove, as a superuser, on a freshly migrated database; everything it
-- makes (roles included) is rolled back.
BEGIN;
SELECT plan(48);

-- Two groups, each with a dealer, a customer, a delivered order and one in production, a
-- notification; made as the owner (triggers fill the analytics summary tables).
CREATE TEMP TABLE ids AS SELECT
    'aaaaaaaa-0000-4000-8000-000000000001'::uuid AS ga, 'bbbbbbbb-0000-4000-8000-000000000001'::uuid AS gb;
GRANT SELECT ON ids TO PUBLIC;
INSERT INTO forecourt.dealer_groups (id, name) SELECT ga, 'Group A' FROM ids UNION ALL SELECT gb, 'Group B' FROM ids;
INSERT INTO forecourt.dealers (dealer_group_id, id, code, name)
    SELECT g, g, 'TAP' || upper(substr(g::text, 1, 1)), 'Dealer' FROM ids, unnest(ARRAY[ga, gb]) AS g;
INSERT INTO forecourt.customers (dealer_group_id, id, key_id, full_name, name_bidx, customer_key)
    SELECT g, g, 1, '\x01deadbeef'::bytea, sha256(g::text::bytea), sha256(('k' || g)::bytea)
    FROM ids, unnest(ARRAY[ga, gb]) AS g;
INSERT INTO forecourt.orders (dealer_group_id, id, dealer_id, customer_id, order_number, model_code, model_year,
        exterior_color, stage, promised_eta, eta, vin, created_at)
    SELECT g, gen_random_uuid(), g, g, 'TAP' || upper(substr(g::text, 1, 1)) || '-00000' || n, 'XC40', 2027, 'White',
        CASE n WHEN 1 THEN 'delivered' ELSE 'paint' END, '2026-03-01', '2026-03-01',
        CASE n WHEN 1 THEN '1HGCM82633A00435' || upper(substr(g::text, 1, 1)) END, '2026-01-01'
    FROM ids, unnest(ARRAY[ga, gb]) AS g, generate_series(1, 2) AS n;
INSERT INTO forecourt.order_events (dealer_group_id, order_id, event, occurred_at, source, reason, note)
    SELECT o.dealer_group_id, o.id, e.event, e.at, 'factory', 'the customer Jane Tapper said so', 'a note about Jane'
    FROM forecourt.orders o, LATERAL (VALUES ('ordered', timestamptz '2026-01-01'), ('scheduled', '2026-01-10'),
        ('paint', '2026-02-01'), ('delivered', '2026-02-20')) AS e(event, at)
    WHERE o.order_number LIKE 'TAP%' AND (e.event <> 'delivered' OR o.stage = 'delivered');
-- The forecast the delivered orders had (the service records it when an order is scheduled).
UPDATE forecourt.order_facts SET forecast_stage = 'scheduled', forecast_p50 = '2026-02-25', forecast_p90 = '2026-03-05',
    forecast_basis = 25
WHERE delivered_at IS NOT NULL AND dealer_group_id IN (SELECT ga FROM ids UNION ALL SELECT gb FROM ids);
INSERT INTO forecourt.notifications (dealer_group_id, id, order_id, kind, channel)
    SELECT dealer_group_id, gen_random_uuid(), id, 'order_confirmation', 'email' FROM forecourt.orders
    WHERE order_number LIKE 'TAP%';

-- Logins: an analyst of every group, one of group A only, a member of forecourt_analyst that
-- no grant names, and a login that is no analyst at all.
CREATE ROLE fc_tap_all LOGIN;
CREATE ROLE fc_tap_one LOGIN;
CREATE ROLE fc_tap_unnamed LOGIN;
CREATE ROLE fc_tap_stranger LOGIN;
GRANT forecourt_analyst TO fc_tap_all, fc_tap_one, fc_tap_unnamed;
INSERT INTO forecourt.analyst_grants (role_oid, role_name, dealer_group_id)
    SELECT 'fc_tap_all'::regrole::oid, 'fc_tap_all', NULL
    UNION ALL SELECT 'fc_tap_one'::regrole::oid, 'fc_tap_one', ga FROM ids;

-- The views, and a check that a login sees exactly the groups it should in every one of them:
-- the distinct groups visible through all seven, as a sorted array.
CREATE FUNCTION pg_temp.visible_groups() RETURNS uuid[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(DISTINCT g ORDER BY g), '{}') FROM (
        SELECT dealer_group_id FROM analytics.orders UNION ALL SELECT dealer_group_id FROM analytics.order_events
        UNION ALL SELECT dealer_group_id FROM analytics.stage_durations
        UNION ALL SELECT dealer_group_id FROM analytics.dealer_kpis UNION ALL SELECT dealer_group_id FROM analytics.eta_accuracy
        UNION ALL SELECT dealer_group_id FROM analytics.notification_delivery
        UNION ALL SELECT dealer_group_id FROM analytics.forecast_accuracy) AS v(g)
$$;
-- Each view on its own: the groups it shows.
CREATE FUNCTION pg_temp.groups_of(view text) RETURNS uuid[] LANGUAGE plpgsql AS $$
DECLARE result uuid[];
BEGIN
    EXECUTE format('SELECT coalesce(array_agg(DISTINCT dealer_group_id ORDER BY dealer_group_id), ''{}'') FROM analytics.%I', view)
        INTO result;
    RETURN result;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.visible_groups(), pg_temp.groups_of(text) TO PUBLIC;

-- 1. The service's and the analysts' roles are never superuser nor BYPASSRLS, and neither
--    are the logins that are members of them.
SELECT is_empty($$
    SELECT rolname FROM pg_roles WHERE rolname IN ('forecourt_app', 'forecourt_analyst') AND (rolsuper OR rolbypassrls)
$$, 'forecourt_app and forecourt_analyst are neither superuser nor BYPASSRLS');
SELECT is_empty($$
    WITH RECURSIVE members(oid) AS (
        SELECT m.member FROM pg_auth_members m WHERE m.roleid IN ('forecourt_app'::regrole, 'forecourt_analyst'::regrole)
        UNION SELECT m.member FROM pg_auth_members m JOIN members ON m.roleid = members.oid)
    SELECT r.rolname FROM pg_roles r JOIN members USING (oid) WHERE r.rolsuper OR r.rolbypassrls
$$, 'no member of forecourt_app or forecourt_analyst is superuser or BYPASSRLS');
SELECT is((SELECT rolcanlogin OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = 'forecourt_analyst'), false,
    'forecourt_analyst cannot log in, create roles or databases');

-- 2. Every tenant table has row-level security enabled and forced.
SELECT is_empty($$
    SELECT c.relname FROM pg_class c
    WHERE c.relnamespace = 'forecourt'::regnamespace AND c.relkind IN ('r', 'p')
        AND (NOT c.relrowsecurity OR NOT c.relforcerowsecurity)
$$, 'every table of schema forecourt has row-level security enabled and forced');
SELECT ok((SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'forecourt'::regnamespace AND c.relkind = 'r'
    AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'dealer_group_id')) >= 12,
    'the tenant tables are there to check');

-- 3. The schema: seven views, security barriers, commented, nothing personal in them.
SELECT set_eq($$ SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = 'analytics'::regnamespace $$,
    ARRAY['orders', 'order_events', 'stage_durations', 'dealer_kpis', 'eta_accuracy', 'notification_delivery',
        'forecast_accuracy'], 'analytics holds exactly the seven views');
SELECT is_empty($$
    SELECT relname FROM pg_class WHERE relnamespace = 'analytics'::regnamespace
        AND (relkind <> 'v' OR NOT coalesce('security_barrier=true' = ANY (reloptions), false))
$$, 'every analytics relation is a security-barrier view');
SELECT is_empty($$
    SELECT c.relname || '.' || a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
    WHERE c.relnamespace = 'analytics'::regnamespace AND col_description(c.oid, a.attnum) IS NULL
    UNION ALL SELECT relname FROM pg_class WHERE relnamespace = 'analytics'::regnamespace
        AND obj_description(oid, 'pg_class') IS NULL
$$, 'every view and column is commented');
SELECT is_empty($$
    SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = 'analytics'
        AND (data_type = 'bytea' OR column_name ~ '(name|mail|phone|address|line|postal|city|country|note|vin|secret|bidx|mac)')
$$, 'no view column holds ciphertext, an index of a personal value, a note or a VIN');

-- 4. What forecourt_analyst may do: SELECT on the views, nothing else anywhere.
SELECT is_empty($$
    SELECT relname FROM pg_class WHERE relnamespace = 'analytics'::regnamespace
        AND NOT has_table_privilege('fc_tap_all', oid, 'SELECT')
$$, 'an analyst may read every view');
SELECT is_empty($$
    SELECT relname || ' ' || p FROM pg_class, unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
    WHERE relnamespace = 'analytics'::regnamespace AND has_table_privilege('fc_tap_all', oid, p)
$$, 'an analyst may change nothing in analytics');
SELECT is_empty($$
    SELECT n.nspname || '.' || c.relname || ' ' || p FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
        unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('analytics', 'pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
        AND has_table_privilege('fc_tap_all', c.oid, p)
$$, 'an analyst has no privilege on any table or view outside analytics (catalogs aside)');
SELECT is_empty($$
    SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'S' AND n.nspname NOT LIKE 'pg_temp%'
        AND (has_sequence_privilege('fc_tap_all', c.oid, 'USAGE') OR has_sequence_privilege('fc_tap_all', c.oid, 'SELECT')
            OR has_sequence_privilege('fc_tap_all', c.oid, 'UPDATE'))
$$, 'an analyst may use no sequence');
SELECT is_empty($$
    SELECT nspname || ' ' || p FROM pg_namespace, unnest(ARRAY['USAGE', 'CREATE']) p
    WHERE nspname NOT IN ('analytics', 'pg_catalog', 'information_schema', 'public') AND nspname NOT LIKE 'pg_temp%'
        AND nspname NOT LIKE 'pg_toast%' AND has_schema_privilege('fc_tap_all', oid, p)
$$, 'an analyst may use no schema but analytics (and the catalogs)');
SELECT ok(NOT has_schema_privilege('fc_tap_all', 'public', 'CREATE') AND NOT has_schema_privilege('fc_tap_all', 'analytics', 'CREATE'),
    'an analyst may create nothing in public or analytics');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_temp%'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
        AND has_schema_privilege('fc_tap_all', n.oid, 'USAGE') AND has_function_privilege('fc_tap_all', p.oid, 'EXECUTE')
$$, 'an analyst can call no function of ours (none is in a schema it may use)');
SELECT is_empty($$
    SELECT relname FROM pg_class WHERE relnamespace = 'analytics'::regnamespace
        AND has_table_privilege('forecourt_app', oid, 'SELECT')
$$, 'the service''s role does not read analytics (it has the tables)');

-- 5. As an analyst of every group: every view answers with both groups; the tables do not.
SET SESSION AUTHORIZATION fc_tap_all;
SELECT is(pg_temp.visible_groups(), (SELECT ARRAY[ga, gb] FROM ids), 'an analyst of every group sees both groups');
SELECT is((SELECT count(*)::int FROM analytics.orders), 4, 'analytics.orders: every order');
SELECT is((SELECT count(*)::int FROM analytics.stage_durations), 14, 'analytics.stage_durations: a row per stage entered');
SELECT throws_ok('SELECT 1 FROM forecourt.orders', '42501', NULL, 'an analyst cannot read the orders table');
SELECT throws_ok('SELECT 1 FROM forecourt.customers', '42501', NULL, 'an analyst cannot read the customers table');
SELECT throws_ok('SELECT forecourt.current_group()', '42501', NULL, 'an analyst cannot call the service''s functions');
SELECT throws_ok('SELECT nextval(''forecourt.customer_change_seq'')', '42501', NULL, 'an analyst cannot use a sequence');
SELECT throws_ok('INSERT INTO forecourt.analyst_grants (role_oid, role_name) VALUES (1, ''x'')', '42501', NULL,
    'an analyst cannot write the grants');
SELECT throws_ok('DELETE FROM analytics.orders', NULL, NULL, 'the views are read-only');
RESET SESSION AUTHORIZATION;

-- 6. As the analyst of group A: group A only, in every view, whatever it sets.
SET SESSION AUTHORIZATION fc_tap_one;
SELECT is(pg_temp.visible_groups(), (SELECT ARRAY[ga] FROM ids), 'a group-limited analyst sees only its group');
SELECT is(pg_temp.groups_of(v), (SELECT ARRAY[ga] FROM ids), 'limited to group A in analytics.' || v)
    FROM unnest(ARRAY['orders', 'order_events', 'stage_durations', 'dealer_kpis', 'eta_accuracy', 'notification_delivery',
        'forecast_accuracy']) AS v;
SELECT is((SELECT count(*)::int FROM analytics.orders WHERE dealer_group_id = (SELECT gb FROM ids)), 0,
    'asking for group B by name finds nothing');
SET forecourt.dealer_group_id = 'bbbbbbbb-0000-4000-8000-000000000001';
SELECT is(pg_temp.visible_groups(), (SELECT ARRAY[ga] FROM ids), 'SET forecourt.dealer_group_id does not widen it');
SELECT set_config('forecourt.scope', 'factory', false), set_config('forecourt.dealer_group_id', '', false) \g /dev/null
SELECT is(pg_temp.visible_groups(), (SELECT ARRAY[ga] FROM ids), 'set_config of the service''s settings does not widen it');
RESET ALL;
SELECT is(pg_temp.visible_groups(), (SELECT ARRAY[ga] FROM ids), 'RESET ALL does not widen it');
SET ROLE forecourt_analyst;
SELECT is(current_user::text, 'forecourt_analyst', 'SET ROLE forecourt_analyst changes current_user');
SELECT is(pg_temp.visible_groups(), (SELECT ARRAY[ga] FROM ids), '... but not what it sees');
RESET ROLE;
SELECT is(pg_temp.visible_groups(), (SELECT ARRAY[ga] FROM ids), 'RESET ROLE does not widen it');
SELECT throws_ok('SET ROLE fc_tap_all', '42501', NULL, 'it cannot SET ROLE to the unlimited analyst');
-- (SET SESSION AUTHORIZATION is refused to a login that is not a superuser; this session
-- logged in as one, so that is checked over a real analyst login: AnalyticsAccessTests.)
-- A function of its own in a WHERE clause sees only rows the barrier let through.
CREATE TEMP TABLE seen (g uuid);
CREATE FUNCTION pg_temp.peek(g uuid) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
    $$ BEGIN INSERT INTO seen VALUES (g); RETURN true; END $$;
SELECT count(*) FROM analytics.orders WHERE pg_temp.peek(dealer_group_id) \g /dev/null
SELECT count(*) FROM analytics.dealer_kpis WHERE pg_temp.peek(dealer_group_id) \g /dev/null
SELECT is((SELECT array_agg(DISTINCT g) FROM seen), (SELECT ARRAY[ga] FROM ids),
    'a cheap function in a WHERE clause never sees another group''s rows');
RESET SESSION AUTHORIZATION;

-- 7. A member of forecourt_analyst that no grant names sees nothing; a stranger, not even that.
SET SESSION AUTHORIZATION fc_tap_unnamed;
SELECT is(pg_temp.visible_groups(), '{}'::uuid[], 'an analyst no grant names sees no group');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION fc_tap_stranger;
SELECT throws_ok('SELECT 1 FROM analytics.orders', '42501', NULL, 'a login that is no analyst cannot read the views');
RESET SESSION AUTHORIZATION;

-- 8. Nothing personal reaches the views: free text of notes and cancellation reasons stays out.
SELECT is_empty($$ SELECT 1 FROM analytics.order_events WHERE reason LIKE '%Jane%' $$,
    'free-text reasons do not reach analytics.order_events');
SELECT is((SELECT count(DISTINCT customer_key)::int FROM analytics.orders), 2, 'one customer_key per customer');
SELECT is((SELECT customer_key FROM analytics.orders WHERE dealer_group_id = (SELECT ga FROM ids) LIMIT 1),
    encode(sha256(('k' || (SELECT ga FROM ids))::bytea), 'hex'), 'customer_key is the stored pseudonym, in hex');

SELECT * FROM finish();
ROLLBACK;
