-- pgbench ceiling of forecourt-bench service (docs/performance.md, "Method"): the SQL the service
-- runs for order.create: claim the idempotency key and check the customer and the dealer, then
-- the group's pace of `ordered` (recomputed if over a minute old), the order (its number from
-- the dealer's sequence, its overdue time computed by the same INSERT), its timeline entry (its
-- seq from the sequence), its outbox notification, its audit row and the read back; then COMMIT
-- and, in the same round trip, the NOTIFYs (docs/architecture.md, "Transactions").
-- The login acts as forecourt_app with the bench group as its default scope (ALTER ROLE ... SET),
-- so row-level security applies as it does to the service. forecourt-bench passes :samples,
-- :group and :dealer, and samples orders into public.bench_sample. The select list is
-- Orders/Order.swift's, with names for pgbench.
\set n random(1, :samples)
BEGIN;
SELECT set_config('forecourt.principal_id', '00000000-0000-4000-8000-00000000beef', true);
INSERT INTO forecourt.idempotency_keys (dealer_group_id, key, method, request_hash, object_id)
VALUES (:group, 'pgbench-' || gen_random_uuid(), 'order.create', '\x00', gen_random_uuid())
ON CONFLICT (dealer_group_id, key) DO NOTHING RETURNING object_id AS oid \gset
SELECT EXISTS (SELECT 1 FROM forecourt.customers WHERE dealer_group_id = :group
        AND id = (SELECT customer_id FROM public.bench_sample WHERE n = :n) AND erased_at IS NULL),
    EXISTS (SELECT 1 FROM forecourt.dealers WHERE dealer_group_id = :group AND id = :dealer);
INSERT INTO forecourt.stage_paces AS p (dealer_group_id, stage, p90_seconds, computed_at)
SELECT :group, 'ordered', (
        SELECT CASE WHEN count(*) >= 20 THEN percentile_cont(0.9) WITHIN GROUP (ORDER BY h.seconds) END
        FROM (SELECT s.seconds FROM forecourt.stage_durations s
              WHERE s.dealer_group_id = :group AND s.stage = 'ordered'
              ORDER BY s.seq DESC LIMIT 200) h), now()
WHERE NOT EXISTS (SELECT 1 FROM forecourt.stage_paces c
    WHERE c.dealer_group_id = :group AND c.stage = 'ordered' AND c.computed_at > now() - make_interval(secs => 60))
ON CONFLICT (dealer_group_id, stage) DO UPDATE SET p90_seconds = EXCLUDED.p90_seconds, computed_at = EXCLUDED.computed_at
WHERE p.computed_at <= EXCLUDED.computed_at - make_interval(secs => 60);
INSERT INTO forecourt.orders (dealer_group_id, id, dealer_id, customer_id, order_number, model_code, model_year, model_trim,
    exterior_color, interior_color, options, overdue_at)
VALUES (:group, :oid, :dealer, (SELECT customer_id FROM public.bench_sample WHERE n = :n),
    forecourt.next_order_number(:dealer), 'BENCH', 2027, NULL, 'White', NULL, '{TOW}',
    CASE WHEN 'ordered' IN ('delivered', 'cancelled') THEN NULL ELSE
        now() + make_interval(secs => greatest(
            CASE 'ordered' WHEN 'ordered' THEN 1209600 WHEN 'scheduled' THEN 3024000 WHEN 'frame' THEN 259200
                WHEN 'paint' THEN 259200 WHEN 'trim' THEN 345600 WHEN 'final_inspection' THEN 259200
                WHEN 'shipped' THEN 1814400 WHEN 'at_dealer' THEN 1209600 END,
            coalesce((SELECT 1.5::float8 * p.p90_seconds FROM forecourt.stage_paces p
                      WHERE p.dealer_group_id = forecourt.current_group() AND p.stage = 'ordered'), 0)))
    END);
INSERT INTO forecourt.order_events (dealer_group_id, order_id, seq, event, occurred_at, source, principal_id, late, note, reason,
    eta, vin, scheduled_week)
OVERRIDING SYSTEM VALUE
VALUES (:group, :oid, nextval('forecourt.order_events_seq_seq'::regclass), 'ordered', now(), 'dealer', NULL, false, NULL, NULL, NULL, NULL, NULL)
RETURNING seq \gset
INSERT INTO forecourt.notifications (dealer_group_id, id, order_id, kind, channel, revision)
SELECT o.dealer_group_id, gen_random_uuid(), o.id, 'order_confirmation', ch.channel,
    0
FROM forecourt.orders o
JOIN forecourt.customers c ON c.dealer_group_id = o.dealer_group_id AND c.id = o.customer_id
CROSS JOIN LATERAL (VALUES ('email', c.notify_email), ('sms', c.notify_sms)) AS ch(channel, wanted)
WHERE o.dealer_group_id = :group AND o.id = :oid AND ch.wanted AND c.erased_at IS NULL;
INSERT INTO forecourt.audit_log (dealer_group_id, principal_id, principal_role, method, object_type, object_id, outcome)
VALUES (:group, NULL, 'sales', 'order.create', 'order', :oid, 'ok');
SELECT id AS oid, order_number, dealer_group_id AS gid, dealer_id AS did, customer_id AS cid, model_code, model_year, model_trim, exterior_color, interior_color, options, stage, on_hold, hold_reason, vin, scheduled_week, promised_eta::text AS promised_eta, eta::text AS eta, (on_hold OR coalesce(eta > promised_eta, false) OR coalesce(overdue_at <= now() AND stage NOT IN ('delivered', 'cancelled'), false)) AS delayed, version, created_at, updated_at, stage_entered_at, (extract(epoch FROM created_at) * 1000000)::int8 AS created_micros, (SELECT ARRAY[q.p50_seconds, q.p90_seconds, q.basis::int8] FROM forecourt.delivery_quantiles q WHERE q.dealer_group_id = orders.dealer_group_id AND q.stage = orders.stage AND q.model_code IN (orders.model_code, '') AND q.basis >= 20 ORDER BY q.model_code = '' LIMIT 1) AS forecast
FROM forecourt.orders WHERE dealer_group_id = :group AND id = :oid;
\startpipeline
COMMIT;
SELECT set_config('synchronous_commit', 'off', true);
SELECT count(pg_notify(n.channel, n.payload)) FROM unnest(ARRAY['forecourt_orders', 'forecourt_delivery'],
    ARRAY[:group || ' ' || :dealer || ' ' || :oid || ' ordered ' || :seq, '']) AS n(channel, payload);
\endpipeline
