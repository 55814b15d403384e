-- pgbench ceiling of forecourt-bench service (docs/performance.md, "Method"): the SQL the service
-- runs for order.timeline: the order, then its events, in a read-only transaction.
-- The login acts as forecourt_app with the bench group as its default scope (ALTER ROLE ... SET),
-- so row-level security applies as it does to the service. forecourt-bench passes :samples,
-- :group and :dealer, and samples orders into public.bench_sample. The select list is
-- Orders/Order.swift's, with names for pgbench.
\set n random(1, :samples)
BEGIN READ ONLY;
SELECT id AS oid, order_number, dealer_group_id AS gid, dealer_id AS did, customer_id AS cid, model_code, model_year, model_trim, exterior_color, interior_color, options, stage, on_hold, hold_reason, vin, scheduled_week, promised_eta::text AS promised_eta, eta::text AS eta, (on_hold OR coalesce(eta > promised_eta, false) OR coalesce(overdue_at <= now() AND stage NOT IN ('delivered', 'cancelled'), false)) AS delayed, version, created_at, updated_at, stage_entered_at, (extract(epoch FROM created_at) * 1000000)::int8 AS created_micros
FROM forecourt.orders WHERE (dealer_group_id, id) = (SELECT group_id, order_id FROM public.bench_sample WHERE n = :n) \gset
SELECT seq, event, occurred_at, recorded_at, source, late, note, reason, eta::text, vin, scheduled_week
FROM forecourt.order_events WHERE dealer_group_id = :gid AND order_id = :oid ORDER BY occurred_at, seq;
COMMIT;
