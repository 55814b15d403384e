-- Analytics at scale: the views' group filter as a set-returning function the planner takes
-- for one row (forecourt.analyst_groups(), ROWS 1) instead of a view over dealer_groups that it
-- took for half the groups. With it, a group-limited analyst's query without a group in its
-- WHERE clause starts from the group and reads the group's rows by index (a nested loop over
-- the visible groups), where before it scanned every group's orders and order_facts and threw
-- away the others (docs/analytics.md, "Fast at scale"). Same rule, same columns.

-- The dealer groups whose rows the session's login may see in `analytics`: the one its grant
-- names, every group when the grant names none, and every group for a superuser (who can read
-- the tables anyway). Keyed on session_user, which SET, set_config, RESET and SET ROLE do not
-- change. SECURITY DEFINER: it reads forecourt.analyst_grants, which analysts cannot; it tells
-- the caller only which groups it may see.
CREATE FUNCTION forecourt.analyst_groups() RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER ROWS 1
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT g.id FROM forecourt.dealer_groups g
    WHERE EXISTS (
            SELECT 1 FROM forecourt.analyst_grants a
            WHERE a.role_oid = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = session_user)
                AND (a.dealer_group_id IS NULL OR a.dealer_group_id = g.id))
        OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user)
$$;
REVOKE ALL ON FUNCTION forecourt.analyst_groups() FROM PUBLIC;
-- The views call it with the caller's EXECUTE privilege; without USAGE on schema forecourt an
-- analyst still cannot call it by name.
GRANT EXECUTE ON FUNCTION forecourt.analyst_groups() TO forecourt_analyst;

CREATE OR REPLACE VIEW analytics.orders WITH (security_barrier) AS
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
WHERE o.dealer_group_id IN (SELECT forecourt.analyst_groups());

CREATE OR REPLACE VIEW analytics.order_events WITH (security_barrier) AS
SELECT e.order_id, e.dealer_group_id, o.dealer_id, e.seq, e.event, e.occurred_at, e.recorded_at, e.late,
    -- reason codes only: a cancellation's reason is free text
    CASE WHEN e.reason IN ('parts_shortage', 'quality_hold', 'carrier_delay', 'damage', 'transport_shortage', 'other')
        THEN e.reason END AS reason,
    e.eta, e.source, e.scheduled_week
FROM forecourt.order_events e
JOIN forecourt.orders o ON o.dealer_group_id = e.dealer_group_id AND o.id = e.order_id
WHERE e.dealer_group_id IN (SELECT forecourt.analyst_groups());

CREATE OR REPLACE VIEW analytics.stage_durations WITH (security_barrier) AS
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
    AND f.dealer_group_id IN (SELECT forecourt.analyst_groups());

CREATE OR REPLACE VIEW analytics.dealer_kpis WITH (security_barrier) AS
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
WHERE d.dealer_group_id IN (SELECT forecourt.analyst_groups())
GROUP BY d.dealer_group_id, d.id, d.code, d.region;

CREATE OR REPLACE VIEW analytics.eta_accuracy WITH (security_barrier) AS
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
    AND o.dealer_group_id IN (SELECT forecourt.analyst_groups())
GROUP BY o.dealer_group_id, o.dealer_id, d.code, o.model_code;

CREATE OR REPLACE VIEW analytics.notification_delivery WITH (security_barrier) AS
SELECT n.dealer_group_id, n.kind, n.channel, n.status, count(*) AS notifications,
    sum(n.attempts) AS attempts, min(n.created_at) AS first_created_at, max(n.created_at) AS last_created_at
FROM forecourt.notifications n
WHERE n.dealer_group_id IN (SELECT forecourt.analyst_groups())
GROUP BY n.dealer_group_id, n.kind, n.channel, n.status;

CREATE OR REPLACE VIEW analytics.forecast_accuracy WITH (security_barrier) AS
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
    AND o.dealer_group_id IN (SELECT forecourt.analyst_groups())
GROUP BY o.dealer_group_id, o.dealer_id, o.model_code;

DROP VIEW forecourt.analyst_visible_groups;
