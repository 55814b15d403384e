-- Analytics (docs/analytics.md): the schema `analytics` that analysts query, the summary
-- tables that keep it fast, the customer pseudonym, who may read it, and the quantiles of
-- the delivery forecast.
--
-- - order_facts: one row per order with the time it entered each stage, from its timeline
--   (late events ignored), kept by a trigger on order_events in the same transaction as the
--   event; plus, once, the forecast the order carried when it first left `ordered`.
-- - delivery_quantiles: per (group, model or '' for any model, stage) the 50th and 90th
--   percentile of the time from entering the stage to delivery, over the group's latest 200
--   deliveries; refreshed by the same trigger when an order is delivered. The service reads
--   it in the same statement as the order (Orders/Order.swift).
-- - customers.customer_key: HMAC-SHA256 of the customer id under a per-group key that the
--   service derives from its keyring; the database holds only the output.
-- - analyst_grants: the login roles that may read `analytics`, each limited to one group or
--   to none, keyed on the role's oid and checked against session_user, which neither SET,
--   set_config, RESET nor SET ROLE changes. Only the owner writes it.

-- The pseudonym of a customer for analytics; NULL until the service writes it (customers
-- created before this migration: `forecourt analyst backfill`).
ALTER TABLE forecourt.customers ADD COLUMN customer_key bytea CHECK (length(customer_key) = 32);

-- Finding an order by id alone (analytics.orders WHERE order_id = ..., and the factory scope).
CREATE INDEX orders_id ON forecourt.orders (id);

CREATE TABLE forecourt.order_facts (
    dealer_group_id uuid NOT NULL,
    order_id uuid NOT NULL,
    -- occurred_at of the first event that moved the order into each stage (never a late one)
    ordered_at timestamptz,
    scheduled_at timestamptz,
    frame_at timestamptz,
    paint_at timestamptz,
    trim_at timestamptz,
    final_inspection_at timestamptz,
    shipped_at timestamptz,
    at_dealer_at timestamptz,
    delivered_at timestamptz,
    cancelled_at timestamptz,
    -- the model it was delivered as (set at delivery: the forecast's history)
    model_code text,
    -- the forecast the order carried when it first left `ordered` (analytics.forecast_accuracy)
    forecast_stage text,
    forecast_p50 date,
    forecast_p90 date,
    forecast_basis integer,
    PRIMARY KEY (dealer_group_id, order_id),
    FOREIGN KEY (dealer_group_id, order_id) REFERENCES forecourt.orders (dealer_group_id, id)
);
CREATE INDEX order_facts_delivered_model ON forecourt.order_facts (dealer_group_id, model_code, delivered_at DESC, order_id DESC)
    WHERE delivered_at IS NOT NULL;
CREATE INDEX order_facts_delivered ON forecourt.order_facts (dealer_group_id, delivered_at DESC, order_id DESC)
    WHERE delivered_at IS NOT NULL;

CREATE TABLE forecourt.delivery_quantiles (
    dealer_group_id uuid NOT NULL,
    -- '' for every model of the group
    model_code text NOT NULL,
    stage text NOT NULL CHECK (stage IN ('ordered', 'scheduled', 'frame', 'paint', 'trim', 'final_inspection',
        'shipped', 'at_dealer')),
    p50_seconds bigint NOT NULL,
    p90_seconds bigint NOT NULL,
    -- how many delivered orders that passed the stage are behind the figures (at most 200)
    basis integer NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dealer_group_id, model_code, stage)
);

-- Recomputes the quantiles of one group for one model and for every model, from the latest
-- 200 deliveries of each (indexes order_facts_delivered_model and order_facts_delivered).
CREATE FUNCTION forecourt.refresh_delivery_quantiles(p_group uuid, p_model text) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO forecourt.delivery_quantiles AS q (dealer_group_id, model_code, stage, p50_seconds, p90_seconds, basis,
        refreshed_at)
    SELECT p_group, h.scope, st.stage,
        round(percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(0, extract(epoch FROM h.delivered_at - st.entered)))),
        round(percentile_cont(0.9) WITHIN GROUP (ORDER BY greatest(0, extract(epoch FROM h.delivered_at - st.entered)))),
        count(*), now()
    FROM (
        (SELECT p_model AS scope, f.* FROM forecourt.order_facts f
         WHERE f.dealer_group_id = p_group AND f.model_code = p_model AND f.delivered_at IS NOT NULL
         ORDER BY f.delivered_at DESC, f.order_id DESC LIMIT 200)
        UNION ALL
        (SELECT '' AS scope, f.* FROM forecourt.order_facts f
         WHERE f.dealer_group_id = p_group AND f.delivered_at IS NOT NULL
         ORDER BY f.delivered_at DESC, f.order_id DESC LIMIT 200)
    ) h
    CROSS JOIN LATERAL (VALUES ('ordered', h.ordered_at), ('scheduled', h.scheduled_at), ('frame', h.frame_at),
        ('paint', h.paint_at), ('trim', h.trim_at), ('final_inspection', h.final_inspection_at),
        ('shipped', h.shipped_at), ('at_dealer', h.at_dealer_at)) AS st(stage, entered)
    WHERE st.entered IS NOT NULL AND p_model IS NOT NULL
    GROUP BY h.scope, st.stage
    ON CONFLICT (dealer_group_id, model_code, stage) DO UPDATE SET p50_seconds = EXCLUDED.p50_seconds,
        p90_seconds = EXCLUDED.p90_seconds, basis = EXCLUDED.basis, refreshed_at = EXCLUDED.refreshed_at
$$;

-- Keeps order_facts in step with the timeline: every stage event that was not late records
-- when the order entered that stage (the first such event wins); a delivery also records the
-- model and refreshes the group's forecast quantiles. Runs as the writer (forecourt_app), so
-- row-level security applies to what it writes.
CREATE FUNCTION forecourt.order_facts_record() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    model text;
BEGIN
    INSERT INTO forecourt.order_facts AS f (dealer_group_id, order_id, ordered_at, scheduled_at, frame_at, paint_at,
        trim_at, final_inspection_at, shipped_at, at_dealer_at, delivered_at, cancelled_at)
    VALUES (NEW.dealer_group_id, NEW.order_id,
        CASE WHEN NEW.event = 'ordered' THEN NEW.occurred_at END,
        CASE WHEN NEW.event = 'scheduled' THEN NEW.occurred_at END,
        CASE WHEN NEW.event = 'frame' THEN NEW.occurred_at END,
        CASE WHEN NEW.event = 'paint' THEN NEW.occurred_at END,
        CASE WHEN NEW.event = 'trim' THEN NEW.occurred_at END,
        CASE WHEN NEW.event = 'final_inspection' THEN NEW.occurred_at END,
        CASE WHEN NEW.event = 'shipped' THEN NEW.occurred_at END,
        CASE WHEN NEW.event = 'at_dealer' THEN NEW.occurred_at END,
        CASE WHEN NEW.event = 'delivered' THEN NEW.occurred_at END,
        CASE WHEN NEW.event = 'cancelled' THEN NEW.occurred_at END)
    ON CONFLICT (dealer_group_id, order_id) DO UPDATE SET
        ordered_at = coalesce(f.ordered_at, EXCLUDED.ordered_at),
        scheduled_at = coalesce(f.scheduled_at, EXCLUDED.scheduled_at),
        frame_at = coalesce(f.frame_at, EXCLUDED.frame_at),
        paint_at = coalesce(f.paint_at, EXCLUDED.paint_at),
        trim_at = coalesce(f.trim_at, EXCLUDED.trim_at),
        final_inspection_at = coalesce(f.final_inspection_at, EXCLUDED.final_inspection_at),
        shipped_at = coalesce(f.shipped_at, EXCLUDED.shipped_at),
        at_dealer_at = coalesce(f.at_dealer_at, EXCLUDED.at_dealer_at),
        delivered_at = coalesce(f.delivered_at, EXCLUDED.delivered_at),
        cancelled_at = coalesce(f.cancelled_at, EXCLUDED.cancelled_at);
    IF NEW.event = 'delivered' THEN
        UPDATE forecourt.order_facts f SET model_code = o.model_code
        FROM forecourt.orders o
        WHERE f.dealer_group_id = NEW.dealer_group_id AND f.order_id = NEW.order_id
            AND o.dealer_group_id = NEW.dealer_group_id AND o.id = NEW.order_id
        RETURNING o.model_code INTO model;
        PERFORM forecourt.refresh_delivery_quantiles(NEW.dealer_group_id, model);
    END IF;
    RETURN NULL;
END
$$;

-- The WHEN clause keeps the function from running for holds, ETA revisions, amendments and
-- late events.
CREATE TRIGGER order_facts_record AFTER INSERT ON forecourt.order_events
    FOR EACH ROW
    WHEN (NOT NEW.late AND NEW.event IN ('ordered', 'scheduled', 'frame', 'paint', 'trim', 'final_inspection', 'shipped',
        'at_dealer', 'delivered', 'cancelled'))
    EXECUTE FUNCTION forecourt.order_facts_record();

-- Rebuilds order_facts (stage times and delivered model; recorded forecasts are kept) and the
-- quantiles of `groups` (every group when NULL) from the timeline: for this migration, for
-- data loaded with triggers off (scripts/seed), and for repairs. The owner's only.
CREATE FUNCTION forecourt.analytics_rebuild(groups uuid[] DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    INSERT INTO forecourt.order_facts AS f (dealer_group_id, order_id, ordered_at, scheduled_at, frame_at, paint_at,
        trim_at, final_inspection_at, shipped_at, at_dealer_at, delivered_at, cancelled_at, model_code)
    SELECT e.dealer_group_id, e.order_id,
        min(e.occurred_at) FILTER (WHERE e.event = 'ordered'),
        min(e.occurred_at) FILTER (WHERE e.event = 'scheduled'),
        min(e.occurred_at) FILTER (WHERE e.event = 'frame'),
        min(e.occurred_at) FILTER (WHERE e.event = 'paint'),
        min(e.occurred_at) FILTER (WHERE e.event = 'trim'),
        min(e.occurred_at) FILTER (WHERE e.event = 'final_inspection'),
        min(e.occurred_at) FILTER (WHERE e.event = 'shipped'),
        min(e.occurred_at) FILTER (WHERE e.event = 'at_dealer'),
        min(e.occurred_at) FILTER (WHERE e.event = 'delivered'),
        min(e.occurred_at) FILTER (WHERE e.event = 'cancelled'),
        CASE WHEN bool_or(e.event = 'delivered') THEN min(o.model_code) END
    FROM forecourt.order_events e
    JOIN forecourt.orders o ON o.dealer_group_id = e.dealer_group_id AND o.id = e.order_id
    WHERE NOT e.late AND e.event IN ('ordered', 'scheduled', 'frame', 'paint', 'trim', 'final_inspection', 'shipped',
            'at_dealer', 'delivered', 'cancelled')
        AND (groups IS NULL OR e.dealer_group_id = ANY (groups))
    GROUP BY e.dealer_group_id, e.order_id
    ON CONFLICT (dealer_group_id, order_id) DO UPDATE SET
        ordered_at = EXCLUDED.ordered_at, scheduled_at = EXCLUDED.scheduled_at, frame_at = EXCLUDED.frame_at,
        paint_at = EXCLUDED.paint_at, trim_at = EXCLUDED.trim_at, final_inspection_at = EXCLUDED.final_inspection_at,
        shipped_at = EXCLUDED.shipped_at, at_dealer_at = EXCLUDED.at_dealer_at, delivered_at = EXCLUDED.delivered_at,
        cancelled_at = EXCLUDED.cancelled_at, model_code = EXCLUDED.model_code;
    DELETE FROM forecourt.delivery_quantiles WHERE groups IS NULL OR dealer_group_id = ANY (groups);
    FOR r IN
        SELECT DISTINCT f.dealer_group_id, f.model_code FROM forecourt.order_facts f
        WHERE f.delivered_at IS NOT NULL AND (groups IS NULL OR f.dealer_group_id = ANY (groups))
    LOOP
        PERFORM forecourt.refresh_delivery_quantiles(r.dealer_group_id, r.model_code);
    END LOOP;
END
$$;

-- The login roles that may read `analytics`: every group (dealer_group_id NULL) or one.
-- Written by `forecourt analyst grant`/`revoke` (the owner); no other role may read or write it.
CREATE TABLE forecourt.analyst_grants (
    role_oid oid PRIMARY KEY,
    role_name name NOT NULL,
    dealer_group_id uuid REFERENCES forecourt.dealer_groups (id),
    granted_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE forecourt.order_facts ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE forecourt.delivery_quantiles ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE forecourt.analyst_grants ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON forecourt.order_facts TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
CREATE POLICY tenant ON forecourt.delivery_quantiles TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
-- The factory and the tracking lookup read orders of other scopes, forecast included; the
-- quantiles are figures of a group, not of anyone.
CREATE POLICY forecast_read ON forecourt.delivery_quantiles FOR SELECT TO forecourt_app
    USING (forecourt.current_scope() IN ('factory', 'portal'));
CREATE POLICY operator ON forecourt.order_facts TO CURRENT_USER USING (true);
CREATE POLICY operator ON forecourt.delivery_quantiles TO CURRENT_USER USING (true);
CREATE POLICY operator ON forecourt.analyst_grants TO CURRENT_USER USING (true);

GRANT SELECT, INSERT, UPDATE ON forecourt.order_facts TO forecourt_app;
GRANT SELECT, INSERT, UPDATE ON forecourt.delivery_quantiles TO forecourt_app;
REVOKE ALL ON FUNCTION forecourt.refresh_delivery_quantiles(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION forecourt.order_facts_record() FROM PUBLIC;
REVOKE ALL ON FUNCTION forecourt.analytics_rebuild(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION forecourt.refresh_delivery_quantiles(uuid, text) TO forecourt_app;
GRANT EXECUTE ON FUNCTION forecourt.order_facts_record() TO forecourt_app;

-- Existing orders: their facts and quantiles from their timelines.
SELECT forecourt.analytics_rebuild();

-- The groups the session's login role may see in `analytics`: the one its grant names, or
-- every group when the grant names none (and for superusers, who can read everything anyway).
-- session_user is the authenticated login: SET ROLE, SET and set_config do not change it.
CREATE VIEW forecourt.analyst_visible_groups AS
    SELECT g.id FROM forecourt.dealer_groups g
    WHERE EXISTS (
            SELECT 1 FROM forecourt.analyst_grants a
            WHERE a.role_oid = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = session_user)
                AND (a.dealer_group_id IS NULL OR a.dealer_group_id = g.id))
        OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user);

CREATE SCHEMA analytics;
REVOKE ALL ON SCHEMA analytics FROM PUBLIC;
COMMENT ON SCHEMA analytics IS
    'Forecourt for analysts: orders, their timelines, stage durations and KPIs, without personal data (docs/analytics.md). Read-only; a login limited to one dealer group sees only that group in every view.';

-- Every view is a security barrier: its group filter runs before any function an analyst
-- puts in a WHERE clause, so nothing of another group reaches such a function.

CREATE VIEW analytics.orders WITH (security_barrier) AS
SELECT o.id AS order_id, o.order_number, o.dealer_group_id, o.dealer_id, d.code AS dealer_code,
    encode(c.customer_key, 'hex') AS customer_key,
    o.model_code, o.model_year, o.model_trim, o.stage, o.on_hold, o.hold_reason,
    -- the rule of docs/architecture.md, "Delays" (Orders/Order.swift)
    (o.on_hold OR coalesce(o.eta > o.promised_eta, false)
        OR coalesce(o.overdue_at <= now() AND o.stage NOT IN ('delivered', 'cancelled'), false)) AS delayed,
    o.promised_eta, o.eta, o.scheduled_week, o.created_at, f.scheduled_at, f.frame_at, f.paint_at, f.trim_at,
    f.final_inspection_at, f.shipped_at, f.at_dealer_at, f.delivered_at, f.cancelled_at,
    round((extract(epoch FROM f.delivered_at - o.created_at) / 86400)::numeric, 2) AS days_to_delivery,
    CASE WHEN f.delivered_at IS NOT NULL AND o.promised_eta IS NOT NULL
        THEN (f.delivered_at AT TIME ZONE 'UTC')::date <= o.promised_eta END AS on_time,
    f.forecast_p50, f.forecast_p90, o.updated_at
FROM forecourt.orders o
JOIN forecourt.dealers d ON d.dealer_group_id = o.dealer_group_id AND d.id = o.dealer_id
LEFT JOIN forecourt.customers c ON c.dealer_group_id = o.dealer_group_id AND c.id = o.customer_id
LEFT JOIN forecourt.order_facts f ON f.dealer_group_id = o.dealer_group_id AND f.order_id = o.id
WHERE o.dealer_group_id IN (SELECT id FROM forecourt.analyst_visible_groups);

CREATE VIEW analytics.order_events WITH (security_barrier) AS
SELECT e.order_id, e.dealer_group_id, o.dealer_id, e.seq, e.event, e.occurred_at, e.recorded_at, e.late,
    -- reason codes only: a cancellation's reason is free text
    CASE WHEN e.reason IN ('parts_shortage', 'quality_hold', 'carrier_delay', 'damage', 'transport_shortage', 'other')
        THEN e.reason END AS reason,
    e.eta, e.source, e.scheduled_week
FROM forecourt.order_events e
JOIN forecourt.orders o ON o.dealer_group_id = e.dealer_group_id AND o.id = e.order_id
WHERE e.dealer_group_id IN (SELECT id FROM forecourt.analyst_visible_groups);

CREATE VIEW analytics.stage_durations WITH (security_barrier) AS
SELECT f.order_id, f.dealer_group_id, o.dealer_id, o.model_code, s.stage, s.stage_rank, s.entered_at, s.left_at,
    CASE WHEN s.left_at IS NOT NULL
        THEN round((greatest(0, extract(epoch FROM s.left_at - s.entered_at)) / 3600)::numeric, 2) END AS hours
FROM forecourt.order_facts f
JOIN forecourt.orders o ON o.dealer_group_id = f.dealer_group_id AND o.id = f.order_id
CROSS JOIN LATERAL (VALUES
    ('ordered', 1, f.ordered_at, coalesce(f.scheduled_at, f.frame_at, f.paint_at, f.trim_at, f.final_inspection_at,
        f.shipped_at, f.at_dealer_at, f.delivered_at, f.cancelled_at)),
    ('scheduled', 2, f.scheduled_at, coalesce(f.frame_at, f.paint_at, f.trim_at, f.final_inspection_at, f.shipped_at,
        f.at_dealer_at, f.delivered_at, f.cancelled_at)),
    ('frame', 3, f.frame_at, coalesce(f.paint_at, f.trim_at, f.final_inspection_at, f.shipped_at, f.at_dealer_at,
        f.delivered_at)),
    ('paint', 4, f.paint_at, coalesce(f.trim_at, f.final_inspection_at, f.shipped_at, f.at_dealer_at, f.delivered_at)),
    ('trim', 5, f.trim_at, coalesce(f.final_inspection_at, f.shipped_at, f.at_dealer_at, f.delivered_at)),
    ('final_inspection', 6, f.final_inspection_at, coalesce(f.shipped_at, f.at_dealer_at, f.delivered_at)),
    ('shipped', 7, f.shipped_at, coalesce(f.at_dealer_at, f.delivered_at)),
    ('at_dealer', 8, f.at_dealer_at, f.delivered_at),
    ('delivered', 9, f.delivered_at, NULL::timestamptz),
    ('cancelled', 10, f.cancelled_at, NULL::timestamptz)
) AS s(stage, stage_rank, entered_at, left_at)
WHERE s.entered_at IS NOT NULL
    AND f.dealer_group_id IN (SELECT id FROM forecourt.analyst_visible_groups);

CREATE VIEW analytics.dealer_kpis WITH (security_barrier) AS
SELECT d.dealer_group_id, d.id AS dealer_id, d.code AS dealer_code, d.region,
    count(o.id) AS orders_total,
    count(o.id) FILTER (WHERE o.stage NOT IN ('delivered', 'cancelled')) AS orders_open,
    count(o.id) FILTER (WHERE o.stage = 'delivered') AS orders_delivered,
    count(o.id) FILTER (WHERE o.stage = 'cancelled') AS orders_cancelled,
    count(o.id) FILTER (WHERE o.on_hold) AS orders_on_hold,
    count(o.id) FILTER (WHERE o.on_hold OR o.eta > o.promised_eta
        OR (o.overdue_at <= now() AND o.stage NOT IN ('delivered', 'cancelled'))) AS orders_delayed,
    round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM f.delivered_at - o.created_at) / 86400)
        FILTER (WHERE o.stage = 'delivered')::numeric, 2) AS median_days_to_delivery,
    round(percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM f.delivered_at - o.created_at) / 86400)
        FILTER (WHERE o.stage = 'delivered')::numeric, 2) AS p90_days_to_delivery,
    round(avg(((f.delivered_at AT TIME ZONE 'UTC')::date <= o.promised_eta)::int)
        FILTER (WHERE o.stage = 'delivered' AND o.promised_eta IS NOT NULL), 4) AS on_time_rate,
    count(o.id) FILTER (WHERE o.stage = 'delivered' AND o.promised_eta IS NOT NULL) AS delivered_with_promise
FROM forecourt.dealers d
LEFT JOIN forecourt.orders o ON o.dealer_group_id = d.dealer_group_id AND o.dealer_id = d.id
LEFT JOIN forecourt.order_facts f ON f.dealer_group_id = o.dealer_group_id AND f.order_id = o.id
WHERE d.dealer_group_id IN (SELECT id FROM forecourt.analyst_visible_groups)
GROUP BY d.dealer_group_id, d.id, d.code, d.region;

CREATE VIEW analytics.eta_accuracy WITH (security_barrier) AS
SELECT o.dealer_group_id, o.dealer_id, d.code AS dealer_code, o.model_code,
    count(*) AS delivered,
    count(*) FILTER (WHERE o.promised_eta IS NOT NULL) AS delivered_with_promise,
    count(*) FILTER (WHERE (f.delivered_at AT TIME ZONE 'UTC')::date <= o.promised_eta) AS delivered_on_time,
    round(avg(greatest((f.delivered_at AT TIME ZONE 'UTC')::date - o.promised_eta, 0))
        FILTER (WHERE o.promised_eta IS NOT NULL), 2) AS mean_days_late,
    round(avg((f.delivered_at AT TIME ZONE 'UTC')::date - o.promised_eta), 2) AS mean_days_after_promise,
    round(avg((f.delivered_at AT TIME ZONE 'UTC')::date - o.eta), 2) AS mean_days_after_last_eta
FROM forecourt.orders o
JOIN forecourt.order_facts f ON f.dealer_group_id = o.dealer_group_id AND f.order_id = o.id
JOIN forecourt.dealers d ON d.dealer_group_id = o.dealer_group_id AND d.id = o.dealer_id
WHERE o.stage = 'delivered' AND f.delivered_at IS NOT NULL
    AND o.dealer_group_id IN (SELECT id FROM forecourt.analyst_visible_groups)
GROUP BY o.dealer_group_id, o.dealer_id, d.code, o.model_code;

CREATE VIEW analytics.notification_delivery WITH (security_barrier) AS
SELECT n.dealer_group_id, n.kind, n.channel, n.status, count(*) AS notifications,
    sum(n.attempts) AS attempts, min(n.created_at) AS first_created_at, max(n.created_at) AS last_created_at
FROM forecourt.notifications n
WHERE n.dealer_group_id IN (SELECT id FROM forecourt.analyst_visible_groups)
GROUP BY n.dealer_group_id, n.kind, n.channel, n.status;

CREATE VIEW analytics.forecast_accuracy WITH (security_barrier) AS
SELECT o.dealer_group_id, o.dealer_id, o.model_code,
    count(*) AS delivered_with_forecast,
    count(*) FILTER (WHERE (f.delivered_at AT TIME ZONE 'UTC')::date <= f.forecast_p50) AS within_p50,
    count(*) FILTER (WHERE (f.delivered_at AT TIME ZONE 'UTC')::date <= f.forecast_p90) AS within_p90,
    round(avg(((f.delivered_at AT TIME ZONE 'UTC')::date <= f.forecast_p50)::int), 4) AS within_p50_rate,
    round(avg(((f.delivered_at AT TIME ZONE 'UTC')::date <= f.forecast_p90)::int), 4) AS within_p90_rate,
    round(avg(f.forecast_basis), 1) AS mean_basis
FROM forecourt.orders o
JOIN forecourt.order_facts f ON f.dealer_group_id = o.dealer_group_id AND f.order_id = o.id
WHERE o.stage = 'delivered' AND f.delivered_at IS NOT NULL AND f.forecast_p50 IS NOT NULL
    AND o.dealer_group_id IN (SELECT id FROM forecourt.analyst_visible_groups)
GROUP BY o.dealer_group_id, o.dealer_id, o.model_code;

-- For analysts reading the schema in psql (\d+) or a BI tool.
COMMENT ON VIEW analytics.orders IS 'One row per order: its dealer, model, stage and flags, the pseudonymous customer, its ETAs, when it entered each stage (from its timeline, late events ignored), and delivery figures. No personal data.';
COMMENT ON COLUMN analytics.orders.order_id IS 'The order''s id (as in the API).';
COMMENT ON COLUMN analytics.orders.order_number IS 'Human-friendly order number: dealer code and per-dealer sequence (DLR01-000123).';
COMMENT ON COLUMN analytics.orders.dealer_group_id IS 'The dealer group the order belongs to.';
COMMENT ON COLUMN analytics.orders.dealer_id IS 'The dealer that placed the order.';
COMMENT ON COLUMN analytics.orders.dealer_code IS 'The maker-assigned code of the dealer.';
COMMENT ON COLUMN analytics.orders.customer_key IS 'Pseudonym of the customer (hex HMAC-SHA256 of the customer id under a per-group key held by the service): the same for all orders of one customer, different across groups, not the API''s customer id, not reversible without the service''s keys. NULL until the service has written it (forecourt analyst backfill).';
COMMENT ON COLUMN analytics.orders.model_code IS 'Vehicle model code (XC40...).';
COMMENT ON COLUMN analytics.orders.model_year IS 'Model year.';
COMMENT ON COLUMN analytics.orders.model_trim IS 'Trim level, if any.';
COMMENT ON COLUMN analytics.orders.stage IS 'Current stage: ordered, scheduled, frame, paint, trim, final_inspection, shipped, at_dealer, delivered, or cancelled.';
COMMENT ON COLUMN analytics.orders.on_hold IS 'True while the order is on hold.';
COMMENT ON COLUMN analytics.orders.hold_reason IS 'The hold''s reason code while on hold (parts_shortage, quality_hold, carrier_delay, damage, transport_shortage, other).';
COMMENT ON COLUMN analytics.orders.delayed IS 'As the API reports it now: on hold, or ETA later than promised, or in its stage far longer than usual for the group (docs/architecture.md, "Delays").';
COMMENT ON COLUMN analytics.orders.promised_eta IS 'The first ETA the factory gave (a date).';
COMMENT ON COLUMN analytics.orders.eta IS 'The latest ETA (a date).';
COMMENT ON COLUMN analytics.orders.scheduled_week IS 'The production week (ISO 8601, 2026-W51), once scheduled.';
COMMENT ON COLUMN analytics.orders.created_at IS 'When the order was placed.';
COMMENT ON COLUMN analytics.orders.scheduled_at IS 'When the order entered stage scheduled (the feed''s occurred_at); NULL if it never did.';
COMMENT ON COLUMN analytics.orders.frame_at IS 'When the order entered stage frame; NULL if it never did (stages may be skipped).';
COMMENT ON COLUMN analytics.orders.paint_at IS 'When the order entered stage paint; NULL if it never did.';
COMMENT ON COLUMN analytics.orders.trim_at IS 'When the order entered stage trim; NULL if it never did.';
COMMENT ON COLUMN analytics.orders.final_inspection_at IS 'When the order entered stage final_inspection; NULL if it never did.';
COMMENT ON COLUMN analytics.orders.shipped_at IS 'When the order was shipped; NULL if not yet.';
COMMENT ON COLUMN analytics.orders.at_dealer_at IS 'When the order arrived at the dealer; NULL if not yet.';
COMMENT ON COLUMN analytics.orders.delivered_at IS 'When the order was delivered (the delivered event''s occurred_at); NULL if not yet.';
COMMENT ON COLUMN analytics.orders.cancelled_at IS 'When the order was cancelled; NULL if it was not.';
COMMENT ON COLUMN analytics.orders.days_to_delivery IS 'Days from created_at to delivered_at (two decimals); NULL until delivered.';
COMMENT ON COLUMN analytics.orders.on_time IS 'Delivered on or before promised_eta (delivery date in UTC); NULL unless delivered with a promised ETA.';
COMMENT ON COLUMN analytics.orders.forecast_p50 IS 'The 50th percentile delivery date the order was forecast when it first left stage ordered (see analytics.forecast_accuracy); NULL if it had none then.';
COMMENT ON COLUMN analytics.orders.forecast_p90 IS 'The 90th percentile delivery date forecast at the same moment.';
COMMENT ON COLUMN analytics.orders.updated_at IS 'When the order last changed.';

COMMENT ON VIEW analytics.order_events IS 'One row per timeline event of an order, in the order they were recorded (seq). Free-text notes and cancellation reasons are left out.';
COMMENT ON COLUMN analytics.order_events.order_id IS 'The order.';
COMMENT ON COLUMN analytics.order_events.dealer_group_id IS 'The order''s dealer group.';
COMMENT ON COLUMN analytics.order_events.dealer_id IS 'The order''s dealer.';
COMMENT ON COLUMN analytics.order_events.seq IS 'Recording sequence number, increasing within a group.';
COMMENT ON COLUMN analytics.order_events.event IS 'A stage (ordered ... delivered, cancelled), hold, release, eta (an ETA revision) or amended.';
COMMENT ON COLUMN analytics.order_events.occurred_at IS 'When it happened, by the source''s clock.';
COMMENT ON COLUMN analytics.order_events.recorded_at IS 'When the service recorded it.';
COMMENT ON COLUMN analytics.order_events.late IS 'True for an event for the current or an earlier stage (or an older hold or ETA) that arrived after a newer one: kept, but it changed nothing.';
COMMENT ON COLUMN analytics.order_events.reason IS 'Reason code of a hold or ETA revision (parts_shortage, quality_hold, carrier_delay, damage, transport_shortage, other); NULL otherwise.';
COMMENT ON COLUMN analytics.order_events.eta IS 'The ETA the event gave, if any.';
COMMENT ON COLUMN analytics.order_events.source IS 'Who recorded it: factory, dealer or system.';
COMMENT ON COLUMN analytics.order_events.scheduled_week IS 'The production week the event gave, if any.';

COMMENT ON VIEW analytics.stage_durations IS 'One row per order and stage it entered: when it entered (from the timeline, late events ignored), when it left (entered a later stage, or was cancelled) and the hours in between.';
COMMENT ON COLUMN analytics.stage_durations.order_id IS 'The order.';
COMMENT ON COLUMN analytics.stage_durations.dealer_group_id IS 'The order''s dealer group.';
COMMENT ON COLUMN analytics.stage_durations.dealer_id IS 'The order''s dealer.';
COMMENT ON COLUMN analytics.stage_durations.model_code IS 'The order''s model code.';
COMMENT ON COLUMN analytics.stage_durations.stage IS 'The stage entered.';
COMMENT ON COLUMN analytics.stage_durations.stage_rank IS 'Position of the stage: 1 ordered ... 9 delivered, 10 cancelled (to sort by).';
COMMENT ON COLUMN analytics.stage_durations.entered_at IS 'When the order entered the stage (occurred_at of the event).';
COMMENT ON COLUMN analytics.stage_durations.left_at IS 'When it entered the next stage it reached, or was cancelled; NULL while this is its stage (always NULL for delivered and cancelled).';
COMMENT ON COLUMN analytics.stage_durations.hours IS 'Hours from entered_at to left_at (two decimals, never negative); NULL while current.';

COMMENT ON VIEW analytics.dealer_kpis IS 'One row per dealer: order counts by state, days to delivery and the on-time rate, over all of the dealer''s orders so far.';
COMMENT ON COLUMN analytics.dealer_kpis.dealer_group_id IS 'The dealer''s group.';
COMMENT ON COLUMN analytics.dealer_kpis.dealer_id IS 'The dealer.';
COMMENT ON COLUMN analytics.dealer_kpis.dealer_code IS 'The maker-assigned dealer code.';
COMMENT ON COLUMN analytics.dealer_kpis.region IS 'The dealer''s region, if set.';
COMMENT ON COLUMN analytics.dealer_kpis.orders_total IS 'Orders placed, all stages.';
COMMENT ON COLUMN analytics.dealer_kpis.orders_open IS 'Orders neither delivered nor cancelled.';
COMMENT ON COLUMN analytics.dealer_kpis.orders_delivered IS 'Orders delivered.';
COMMENT ON COLUMN analytics.dealer_kpis.orders_cancelled IS 'Orders cancelled.';
COMMENT ON COLUMN analytics.dealer_kpis.orders_on_hold IS 'Orders on hold now.';
COMMENT ON COLUMN analytics.dealer_kpis.orders_delayed IS 'Orders delayed now (see analytics.orders.delayed).';
COMMENT ON COLUMN analytics.dealer_kpis.median_days_to_delivery IS 'Median over delivered orders of the days from created_at to the delivered event''s occurred_at (interpolated, two decimals).';
COMMENT ON COLUMN analytics.dealer_kpis.p90_days_to_delivery IS '90th percentile of the same (interpolated, two decimals).';
COMMENT ON COLUMN analytics.dealer_kpis.on_time_rate IS 'Share (0 to 1) of delivered orders that had a promised ETA and were delivered on or before it (delivery date in UTC); NULL when there are none.';
COMMENT ON COLUMN analytics.dealer_kpis.delivered_with_promise IS 'Delivered orders that had a promised ETA: the denominator of on_time_rate.';

COMMENT ON VIEW analytics.eta_accuracy IS 'One row per dealer and model with deliveries: how the promised and the latest ETA compared with the delivery date (in UTC).';
COMMENT ON COLUMN analytics.eta_accuracy.dealer_group_id IS 'The dealer''s group.';
COMMENT ON COLUMN analytics.eta_accuracy.dealer_id IS 'The dealer.';
COMMENT ON COLUMN analytics.eta_accuracy.dealer_code IS 'The maker-assigned dealer code.';
COMMENT ON COLUMN analytics.eta_accuracy.model_code IS 'The model code.';
COMMENT ON COLUMN analytics.eta_accuracy.delivered IS 'Orders delivered.';
COMMENT ON COLUMN analytics.eta_accuracy.delivered_with_promise IS 'Delivered orders that had a promised ETA.';
COMMENT ON COLUMN analytics.eta_accuracy.delivered_on_time IS 'Delivered on or before the promised ETA.';
COMMENT ON COLUMN analytics.eta_accuracy.mean_days_late IS 'Mean days after the promised ETA, on-time deliveries counting 0, over delivered_with_promise (two decimals).';
COMMENT ON COLUMN analytics.eta_accuracy.mean_days_after_promise IS 'Mean of delivery date minus promised ETA (negative: early), over delivered_with_promise.';
COMMENT ON COLUMN analytics.eta_accuracy.mean_days_after_last_eta IS 'Mean of delivery date minus the latest ETA (negative: early).';

COMMENT ON VIEW analytics.notification_delivery IS 'One row per group, kind, channel and status: how many notifications, and how many delivery attempts they took.';
COMMENT ON COLUMN analytics.notification_delivery.dealer_group_id IS 'The dealer group.';
COMMENT ON COLUMN analytics.notification_delivery.kind IS 'order_confirmation, production_scheduled, vin_assigned, shipped, delivered or delay.';
COMMENT ON COLUMN analytics.notification_delivery.channel IS 'email or sms.';
COMMENT ON COLUMN analytics.notification_delivery.status IS 'pending, sent or failed.';
COMMENT ON COLUMN analytics.notification_delivery.notifications IS 'Notifications in this state.';
COMMENT ON COLUMN analytics.notification_delivery.attempts IS 'Delivery attempts they took in all.';
COMMENT ON COLUMN analytics.notification_delivery.first_created_at IS 'When the oldest of them was queued.';
COMMENT ON COLUMN analytics.notification_delivery.last_created_at IS 'When the newest of them was queued.';

COMMENT ON VIEW analytics.forecast_accuracy IS 'One row per dealer and model: of the delivered orders that had a delivery forecast when they first left stage ordered, how many were delivered by its p50 and by its p90 date (a calibrated forecast gives rates near 0.5 and 0.9).';
COMMENT ON COLUMN analytics.forecast_accuracy.dealer_group_id IS 'The dealer''s group.';
COMMENT ON COLUMN analytics.forecast_accuracy.dealer_id IS 'The dealer.';
COMMENT ON COLUMN analytics.forecast_accuracy.model_code IS 'The model code.';
COMMENT ON COLUMN analytics.forecast_accuracy.delivered_with_forecast IS 'Delivered orders with a recorded forecast.';
COMMENT ON COLUMN analytics.forecast_accuracy.within_p50 IS 'Of those, delivered on or before the forecast''s p50 date (UTC).';
COMMENT ON COLUMN analytics.forecast_accuracy.within_p90 IS 'Of those, delivered on or before the forecast''s p90 date (UTC).';
COMMENT ON COLUMN analytics.forecast_accuracy.within_p50_rate IS 'within_p50 / delivered_with_forecast.';
COMMENT ON COLUMN analytics.forecast_accuracy.within_p90_rate IS 'within_p90 / delivered_with_forecast.';
COMMENT ON COLUMN analytics.forecast_accuracy.mean_basis IS 'Mean number of past deliveries the forecasts were based on.';

GRANT USAGE ON SCHEMA analytics TO forecourt_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO forecourt_analyst;
