-- pgbench ceiling of forecourt-bench service (docs/performance.md, "Method"): the SQL the service
-- runs for order.timeline: the order joined to its events, one statement.
-- The login acts as forecourt_app with the bench group as its default scope (ALTER ROLE ... SET),
-- so row-level security applies as it does to the service. forecourt-bench passes :samples,
-- :group and :dealer, and samples orders into public.bench_sample. The select list is
-- Orders/Order.swift's, with names for pgbench.
\set n random(1, :samples)
SELECT e.seq, e.event, e.occurred_at, e.recorded_at, e.source, e.late, e.note, e.reason, e.eta::text, e.vin, e.scheduled_week
FROM forecourt.orders o
LEFT JOIN forecourt.order_events e ON e.dealer_group_id = o.dealer_group_id AND e.order_id = o.id
WHERE o.id = (SELECT order_id FROM public.bench_sample WHERE n = :n) AND o.dealer_group_id = :group
ORDER BY e.occurred_at, e.seq;
