-- pgbench ceiling of forecourt-bench service (docs/performance.md, "Method"): the SQL the service
-- runs for track.lookup: in the portal scope, the failure counters
-- and the candidates by vin_last8 (their customers' name index), then the counters locked,
-- the order and its stage dates.
-- The login acts as forecourt_app with the bench group as its default scope (ALTER ROLE ... SET),
-- so row-level security applies as it does to the service. forecourt-bench passes :samples,
-- :group and :dealer, and samples orders into public.bench_sample. The select list is
-- Orders/Order.swift's, with names for pgbench.
\set n random(1, :samples)
BEGIN;
SELECT set_config('forecourt.dealer_group_id', '', true), set_config('forecourt.scope', 'portal', true),
    set_config('forecourt.portal_group', :group, true),
    set_config('forecourt.vin_last8', (SELECT vin_last8 FROM public.bench_sample WHERE n = :n), true);
WITH per_vin AS (
    SELECT failures, (extract(epoch FROM (window_started_at + make_interval(secs => 900) - now())) * 1000)::int8 AS remaining
    FROM forecourt.track_lookup_failures
    WHERE dealer_group_id IS NOT DISTINCT FROM :group::uuid AND vin_last8 = forecourt.current_vin_last8()
), per_principal AS (
    SELECT failures, (extract(epoch FROM (window_started_at + make_interval(secs => 900) - now())) * 1000)::int8 AS remaining
    FROM forecourt.track_lookup_budgets WHERE principal_id = '00000000-0000-4000-8000-00000000beef'
)
SELECT failures, remaining, 5 FROM per_vin UNION ALL SELECT failures, remaining, 200 FROM per_principal;
SELECT o.dealer_group_id AS gid, o.id AS oid, c.name_bidx FROM forecourt.orders o
JOIN forecourt.customers c ON c.dealer_group_id = o.dealer_group_id AND c.id = o.customer_id
WHERE o.vin_last8 = forecourt.current_vin_last8() \gset
WITH per_vin AS (
    SELECT failures, (extract(epoch FROM (window_started_at + make_interval(secs => 900) - now())) * 1000)::int8 AS remaining
    FROM forecourt.track_lookup_failures
    WHERE dealer_group_id IS NOT DISTINCT FROM :group::uuid AND vin_last8 = forecourt.current_vin_last8() FOR SHARE
), per_principal AS (
    SELECT failures, (extract(epoch FROM (window_started_at + make_interval(secs => 900) - now())) * 1000)::int8 AS remaining
    FROM forecourt.track_lookup_budgets WHERE principal_id = '00000000-0000-4000-8000-00000000beef' FOR SHARE
)
SELECT failures, remaining, 5 FROM per_vin UNION ALL SELECT failures, remaining, 200 FROM per_principal;
SELECT id AS oid, order_number, dealer_group_id AS gid, dealer_id AS did, customer_id AS cid, model_code, model_year, model_trim, exterior_color, interior_color, options, stage, on_hold, hold_reason, vin, scheduled_week, promised_eta::text AS promised_eta, eta::text AS eta, (on_hold OR coalesce(eta > promised_eta, false) OR coalesce(overdue_at <= now() AND stage NOT IN ('delivered', 'cancelled'), false)) AS delayed, version, created_at, updated_at, stage_entered_at, (extract(epoch FROM created_at) * 1000000)::int8 AS created_micros, (SELECT ARRAY[q.p50_seconds, q.p90_seconds, q.basis::int8] FROM forecourt.delivery_quantiles q WHERE q.dealer_group_id = orders.dealer_group_id AND q.stage = orders.stage AND q.model_code IN (orders.model_code, '') AND q.basis >= 20 ORDER BY q.model_code = '' LIMIT 1) AS forecast
FROM forecourt.orders WHERE dealer_group_id = :gid AND id = :oid;
SELECT event, min(occurred_at) FROM forecourt.order_events
WHERE dealer_group_id = :gid AND order_id = :oid AND NOT late GROUP BY event;
COMMIT;
