-- pgbench ceiling of forecourt-bench service (docs/performance.md, "Method"): the SQL the service
-- runs for order.record_event by the factory (an ETA revision):
-- re-scope from the factory's read of every group to the order's group (one statement), lock
-- the order, the timeline checks, the timeline entry (its seq from the sequence), a delay
-- notification, the audit row, and the update returning the order (the read back); then COMMIT
-- and, in the same round trip, the NOTIFYs (docs/architecture.md, "Transactions").
-- The login acts as forecourt_app with the bench group as its default scope (ALTER ROLE ... SET),
-- so row-level security applies as it does to the service. forecourt-bench passes :samples,
-- :group and :dealer, and samples orders into public.bench_sample. The select list is
-- Orders/Order.swift's, with names for pgbench.
\set n random(1, :samples)
BEGIN;
SELECT set_config('forecourt.dealer_group_id', '', true), set_config('forecourt.scope', 'factory', true);
SELECT set_config('forecourt.dealer_group_id', coalesce((SELECT dealer_group_id::text FROM forecourt.orders
        WHERE id = (SELECT order_id FROM public.bench_sample WHERE n = :n)), ''), true),
    set_config('forecourt.scope', '', true);
SELECT id AS oid, order_number, dealer_group_id AS gid, dealer_id AS did, customer_id AS cid, model_code, model_year, model_trim, exterior_color, interior_color, options, stage, on_hold, hold_reason, vin, scheduled_week, promised_eta::text AS promised_eta, eta::text AS eta, (on_hold OR coalesce(eta > promised_eta, false) OR coalesce(overdue_at <= now() AND stage NOT IN ('delivered', 'cancelled'), false)) AS delayed, version, created_at, updated_at, stage_entered_at, (extract(epoch FROM created_at) * 1000000)::int8 AS created_micros, (SELECT ARRAY[q.p50_seconds, q.p90_seconds, q.basis::int8] FROM forecourt.delivery_quantiles q WHERE q.dealer_group_id = orders.dealer_group_id AND q.stage = orders.stage AND q.model_code IN (orders.model_code, '') AND q.basis >= 20 ORDER BY q.model_code = '' LIMIT 1) AS forecast
FROM forecourt.orders WHERE id = (SELECT order_id FROM public.bench_sample WHERE n = :n) FOR UPDATE \gset
WITH o AS (SELECT :oid::uuid AS id) SELECT coalesce(bool_or(e.event = 'eta' AND e.occurred_at = clock_timestamp()), false),
    coalesce(bool_or(NOT e.late AND e.event IN ('hold', 'release') AND e.occurred_at > clock_timestamp()), false),
    coalesce(bool_or(NOT e.late AND e.eta IS NOT NULL AND e.occurred_at > clock_timestamp()), false)
FROM forecourt.order_events e, o WHERE e.dealer_group_id = forecourt.current_group() AND e.order_id = o.id;
INSERT INTO forecourt.order_events (dealer_group_id, order_id, seq, event, occurred_at, source, principal_id, late, note, reason,
    eta, vin, scheduled_week)
OVERRIDING SYSTEM VALUE
VALUES (:gid, :oid, nextval('forecourt.order_events_seq_seq'::regclass), 'eta', clock_timestamp(), 'factory', NULL, false, NULL, 'other', current_date + 30, NULL, NULL)
RETURNING seq \gset
INSERT INTO forecourt.notifications (dealer_group_id, id, order_id, kind, channel, revision)
SELECT o.dealer_group_id, gen_random_uuid(), o.id, 'delay', ch.channel,
    :seq
FROM forecourt.orders o
JOIN forecourt.customers c ON c.dealer_group_id = o.dealer_group_id AND c.id = o.customer_id
CROSS JOIN LATERAL (VALUES ('email', c.notify_email), ('sms', c.notify_sms)) AS ch(channel, wanted)
WHERE o.dealer_group_id = :gid AND o.id = :oid AND ch.wanted AND c.erased_at IS NULL;
INSERT INTO forecourt.audit_log (dealer_group_id, principal_id, principal_role, method, object_type, object_id, outcome)
VALUES (:gid, NULL, 'factory', 'order.record_event', 'order', :oid, 'ok');
UPDATE forecourt.orders SET stage = coalesce(NULL, stage), on_hold = on_hold, hold_reason = hold_reason, vin = vin,
    scheduled_week = scheduled_week, promised_eta = coalesce(promised_eta, current_date + 30), eta = current_date + 30,
    version = version + 1, updated_at = now()
WHERE dealer_group_id = :gid AND id = :oid
RETURNING id AS oid, order_number, dealer_group_id AS gid, dealer_id AS did, customer_id AS cid, model_code, model_year, model_trim, exterior_color, interior_color, options, stage, on_hold, hold_reason, vin, scheduled_week, promised_eta::text AS promised_eta, eta::text AS eta, (on_hold OR coalesce(eta > promised_eta, false) OR coalesce(overdue_at <= now() AND stage NOT IN ('delivered', 'cancelled'), false)) AS delayed, version, created_at, updated_at, stage_entered_at, (extract(epoch FROM created_at) * 1000000)::int8 AS created_micros, (SELECT ARRAY[q.p50_seconds, q.p90_seconds, q.basis::int8] FROM forecourt.delivery_quantiles q WHERE q.dealer_group_id = orders.dealer_group_id AND q.stage = orders.stage AND q.model_code IN (orders.model_code, '') AND q.basis >= 20 ORDER BY q.model_code = '' LIMIT 1) AS forecast;
\startpipeline
COMMIT;
SELECT set_config('synchronous_commit', 'off', true);
SELECT count(pg_notify(n.channel, n.payload)) FROM unnest(ARRAY['forecourt_orders', 'forecourt_delivery'],
    ARRAY[:gid || ' ' || :did || ' ' || :oid || ' eta ' || :seq, '']) AS n(channel, payload);
\endpipeline
