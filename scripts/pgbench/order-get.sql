-- pgbench ceiling of forecourt-bench service (docs/performance.md, "Method"): the SQL the service
-- runs for order.get: the order by its primary key.
-- The login acts as forecourt_app with the bench group as its default scope (ALTER ROLE ... SET),
-- so row-level security applies as it does to the service. forecourt-bench passes :samples,
-- :group and :dealer, and samples orders into public.bench_sample. The select list is
-- Orders/Order.swift's, with names for pgbench.
\set n random(1, :samples)
SELECT id AS oid, order_number, dealer_group_id AS gid, dealer_id AS did, customer_id AS cid, model_code, model_year, model_trim, exterior_color, interior_color, options, stage, on_hold, hold_reason, vin, scheduled_week, promised_eta::text AS promised_eta, eta::text AS eta, (on_hold OR coalesce(eta > promised_eta, false) OR coalesce(overdue_at <= now() AND stage NOT IN ('delivered', 'cancelled'), false)) AS delayed, version, created_at, updated_at, stage_entered_at, (extract(epoch FROM created_at) * 1000000)::int8 AS created_micros, (SELECT ARRAY[q.p50_seconds, q.p90_seconds, q.basis::int8] FROM forecourt.delivery_quantiles q WHERE q.dealer_group_id = orders.dealer_group_id AND q.stage = orders.stage AND q.model_code IN (orders.model_code, '') AND q.basis >= 20 ORDER BY q.model_code = '' LIMIT 1) AS forecast
FROM forecourt.orders WHERE (dealer_group_id, id) = (SELECT group_id, order_id FROM public.bench_sample WHERE n = :n);
