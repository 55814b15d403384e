-- A stand-in for scripts/seed until it lands: one dealer group of :orders orders (20 dealers,
-- one customer per five orders), each with a timeline up to its stage. Bulk SQL, run by the
-- owner with psql -v group=UUID -v orders=N. Customers carry placeholder envelopes: orders
-- never decrypt them, and forecourt-bench gives the ones it tracks a real name index.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO forecourt.dealer_groups (id, name) VALUES (:'group', 'Bench Group');
CREATE TEMP TABLE seed_dealers AS
    SELECT i, gen_random_uuid() AS id, 'BENCH' || lpad(i::text, 3, '0') AS code FROM generate_series(0, 19) i;
INSERT INTO forecourt.dealers (dealer_group_id, id, code, name, next_order_seq)
    SELECT :'group', id, code, 'Bench dealer ' || i, :orders / 20 + 2 FROM seed_dealers;
CREATE TEMP TABLE seed_customers AS
    SELECT i, gen_random_uuid() AS id FROM generate_series(0, greatest(:orders / 5, 1) - 1) i;
INSERT INTO forecourt.customers (dealer_group_id, id, external_ref, key_id, full_name, notify_email, notify_sms)
    SELECT :'group', id, 'bench-' || i, 1, '\x00', i % 2 = 0, i % 4 = 0 FROM seed_customers;
-- Stages: the oldest orders are delivered, the newest still ordered; every tenth is cancelled
-- early, every fiftieth on hold. Order i was created i minutes after the first.
CREATE TEMP TABLE seed_orders AS
    SELECT i, gen_random_uuid() AS id,
        (ARRAY['delivered', 'at_dealer', 'shipped', 'final_inspection', 'trim', 'paint', 'frame', 'scheduled', 'ordered'])
            [1 + (i * 9) / :orders] AS stage,
        now() - make_interval(mins => :orders - i) AS created_at
    FROM generate_series(0, :orders - 1) i;
UPDATE seed_orders SET stage = 'cancelled' WHERE i % 10 = 7 AND stage IN ('ordered', 'scheduled');
INSERT INTO forecourt.orders (dealer_group_id, id, dealer_id, customer_id, order_number, model_code, model_year,
        exterior_color, options, stage, stage_entered_at, on_hold, hold_reason, vin, scheduled_week, promised_eta, eta,
        created_at, updated_at)
    SELECT :'group', o.id, d.id, c.id, d.code || '-' || lpad((o.i / 20 + 1)::text, 6, '0'),
        (ARRAY['SEDAN', 'WAGON', 'SUV', 'VAN'])[1 + o.i % 4], 2027, 'White', '{TOW,ROOF}', o.stage,
        o.created_at + interval '1 hour', o.i % 50 = 3 AND o.stage NOT IN ('delivered', 'cancelled'),
        CASE WHEN o.i % 50 = 3 AND o.stage NOT IN ('delivered', 'cancelled') THEN 'parts_shortage' END,
        CASE WHEN o.stage NOT IN ('ordered', 'cancelled') THEN 'BNCH' || lpad(o.i::text, 13, '0') END,
        CASE WHEN o.stage NOT IN ('ordered', 'cancelled') THEN '2027-W10' END,
        (o.created_at + interval '90 days')::date, (o.created_at + interval '90 days')::date,
        o.created_at, o.created_at + interval '1 hour'
    FROM seed_orders o
    JOIN seed_dealers d ON d.i = o.i % 20
    JOIN seed_customers c ON c.i = o.i % greatest(:orders / 5, 1);
-- The timeline: ordered, then every stage up to the current one, an hour apart.
INSERT INTO forecourt.order_events (dealer_group_id, order_id, event, occurred_at, source, eta)
    SELECT :'group', o.id, s.stage, o.created_at + make_interval(hours => (s.n - 1)::int),
        CASE WHEN s.n = 1 THEN 'dealer' ELSE 'factory' END,
        CASE WHEN s.n = 2 THEN (o.created_at + interval '90 days')::date END
    FROM seed_orders o
    CROSS JOIN LATERAL unnest(
        CASE WHEN o.stage = 'cancelled' THEN ARRAY['ordered', 'cancelled']
        ELSE (ARRAY['ordered', 'scheduled', 'frame', 'paint', 'trim', 'final_inspection', 'shipped', 'at_dealer', 'delivered'])
            [1:array_position(ARRAY['ordered', 'scheduled', 'frame', 'paint', 'trim', 'final_inspection', 'shipped',
                'at_dealer', 'delivered'], o.stage)] END) WITH ORDINALITY AS s(stage, n);
COMMIT;
ANALYZE;
CHECKPOINT;
