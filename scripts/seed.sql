-- Bulk data for analytics checks and benchmarks: run by scripts/seed (which documents the
-- parameters), or directly with psql:
--
--   psql -X -v groups=2 -v dealers=3 -v customers=500 -v orders=1000 -v events=10 \
--        -v tag=ABC -v rseed=0.42 -v span_days=730 -f scripts/seed.sql "$URL"
--
-- Everything is made by set-based SQL (generate_series, INSERT ... SELECT): a million orders
-- with ten million timeline events take minutes, not hours. Runs as the owner (the operator
-- policies admit it), in one transaction. As a superuser it turns triggers and foreign-key
-- checks off while loading (session_replication_role = replica), since every row it writes is
-- consistent by construction; otherwise it turns off only the analytics trigger. Either way it
-- then fills the analytics summary tables in bulk (forecourt.analytics_rebuild).
--
-- What it makes, per order, from a simulated history (docs/analytics.md, "Seeding"):
-- - a creation time spread over the last `span_days` days; the stages it would pass with
--   log-normal durations per stage (slower for some models); the stages entered by now are
--   its timeline, so old orders are delivered and recent ones in production;
-- - a promised ETA with `scheduled`, a VIN (valid check digit) with `frame`, a scheduled week;
-- - about 4 % cancelled before `frame`, about 2 % with a late (out-of-order) stage event;
-- - hold/release pairs and ETA revisions converging on the real delivery date, as many as
--   it takes to reach `events` timeline events per order on average; an order whose last
--   hold has no release is on hold now;
-- - `stage_durations` (the delay rule's history) and notifications already sent or failed
--   (none pending, so a service started on the data has nothing to deliver to the
--   placeholder customers).
-- Customers' encrypted columns hold opaque placeholder bytes (sealed by no key, key_id NULL):
-- orders never decrypt them, and customer.get on one fails authentication, as it should.
\set ON_ERROR_STOP on
\pset tuples_only on
\pset format unaligned
SET client_min_messages = warning;
SET work_mem = '256MB';
-- The simulated histories live in temporary tables: keep them in memory.
SET temp_buffers = '2GB';
SET maintenance_work_mem = '512MB';
-- random() with setseed is reproducible only in one process.
SET max_parallel_workers_per_gather = 0;
SET synchronous_commit = off;
SELECT setseed(:rseed);
SELECT clock_timestamp() AS seed_started, now() AS seed_now \gset
SELECT greatest(1, ceil(:customers::numeric / :groups))::int AS cpg \gset

-- One transaction: a failed run leaves nothing behind (not even a disabled trigger).
BEGIN;
SELECT rolsuper AS is_super FROM pg_roles WHERE rolname = current_user \gset
\if :is_super
SET LOCAL session_replication_role = replica;
\else
-- The owner may at least switch off the analytics trigger, whose work is redone in bulk below.
ALTER TABLE forecourt.order_events DISABLE TRIGGER order_facts_record;
\endif

-- A VIN's check digit (position 9, North American rule) from the weighted sum of the others.
CREATE FUNCTION pg_temp.vin_sum(v text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT sum((CASE WHEN c BETWEEN '0' AND '9' THEN ascii(c) - 48
                ELSE ('{1,2,3,4,5,6,7,8,0,1,2,3,4,5,0,7,0,9,2,3,4,5,6,7,8,9}'::int[])[ascii(c) - 64] END)
            * ('{8,7,6,5,4,3,2,10,0,9,8,7,6,5,4,3,2}'::int[])[n])::int
    FROM unnest(string_to_array(v, NULL)) WITH ORDINALITY AS x(c, n)
$$;
-- One line of the report: step, rows, seconds since `since`.
CREATE FUNCTION pg_temp.report(step text, n bigint, since timestamptz) RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT format('%-18s %10s %9s s', step, coalesce(n::text || ' rows', ''),
        to_char(extract(epoch FROM clock_timestamp() - since), 'FM99990.0'))
$$;
-- Log-normal noise with median 1.
CREATE FUNCTION pg_temp.noise() RETURNS float8 LANGUAGE sql VOLATILE AS $$
    SELECT exp(0.9 * (random() + random() + random() - 1.5))
$$;

-- Groups and dealers
SELECT clock_timestamp() AS t \gset
CREATE TEMP TABLE seed_groups AS
    SELECT gi, gen_random_uuid() AS id FROM generate_series(0, :groups - 1) AS gi;
INSERT INTO forecourt.dealer_groups (id, name, created_at)
    SELECT id, format('Seed group %s-%s', :'tag', gi), :'seed_now'::timestamptz - make_interval(days => :span_days + 30)
    FROM seed_groups;
CREATE TEMP TABLE seed_dealers AS
    SELECT g.gi, d.di, g.id AS gid, gen_random_uuid() AS id,
        'Z' || :'tag' || lpad((g.gi * :dealers + d.di)::text, 6, '0') AS code
    FROM seed_groups g CROSS JOIN generate_series(0, :dealers - 1) AS d(di);
CREATE UNIQUE INDEX ON seed_dealers (gi, di);
ANALYZE seed_dealers;
INSERT INTO forecourt.dealers (dealer_group_id, id, code, name, region, timezone, created_at, updated_at)
    SELECT gid, id, code, format('Seed Motors %s', code), (ARRAY['North', 'South', 'East', 'West'])[1 + di % 4],
        'Europe/Stockholm', :'seed_now'::timestamptz - make_interval(days => :span_days + 30),
        :'seed_now'::timestamptz - make_interval(days => :span_days + 30)
    FROM seed_dealers;
SELECT pg_temp.report('groups, dealers', :groups * :dealers, :'t');

-- Customers: placeholder ciphertexts and indexes; every fourth one takes SMS.
SELECT clock_timestamp() AS t \gset
CREATE TEMP TABLE seed_customers AS
    SELECT g.gi, c.ci, g.id AS gid, gen_random_uuid() AS id
    FROM seed_groups g CROSS JOIN generate_series(0, :cpg - 1) AS c(ci);
CREATE UNIQUE INDEX ON seed_customers (gi, ci);
ANALYZE seed_customers;
INSERT INTO forecourt.customers (dealer_group_id, id, external_ref, key_id, full_name, email, phone, city, country,
        email_bidx, phone_bidx, name_bidx, customer_key, notify_email, notify_sms, created_at, updated_at)
    SELECT gid, id, format('S%s-%s-%s', :'tag', gi, ci), NULL,
        '\x01ffffffff'::bytea || sha256(convert_to(id::text || 'n', 'UTF8')),
        '\x01ffffffff'::bytea || sha256(convert_to(id::text || 'e', 'UTF8')),
        '\x01ffffffff'::bytea || sha256(convert_to(id::text || 'p', 'UTF8')),
        '\x01ffffffff'::bytea || sha256(convert_to(id::text || 'c', 'UTF8')),
        '\x01ffffffff'::bytea || sha256(convert_to(id::text || 'k', 'UTF8')),
        sha256(convert_to(id::text || 'E', 'UTF8')), sha256(convert_to(id::text || 'P', 'UTF8')),
        sha256(convert_to(id::text || 'N', 'UTF8')), sha256(convert_to(id::text || 'K', 'UTF8')),
        true, ci % 4 = 0,
        :'seed_now'::timestamptz - make_interval(days => :span_days + 30),
        :'seed_now'::timestamptz - make_interval(days => :span_days + 30)
    FROM seed_customers;
SELECT pg_temp.report('customers', :groups * :cpg, :'t');

-- The simulated history of every order.
SELECT clock_timestamp() AS t \gset
CREATE TEMP TABLE seed_orders AS
WITH r AS (
    SELECT i, i % :groups AS gi, floor(random() * :dealers)::int AS di, floor(random() * :cpg)::int AS ci,
        -- a skewed model mix: the first models sell most
        least(7, floor(8 * random() * random()))::int AS m,
        :'seed_now'::timestamptz - random() * make_interval(days => :span_days) AS t1,
        random() AS r_cancel, random() AS r_cancel_at, random() AS r_late, random() AS r_extra,
        pg_temp.noise() AS n1, pg_temp.noise() AS n2, pg_temp.noise() AS n3, pg_temp.noise() AS n4,
        pg_temp.noise() AS n5, pg_temp.noise() AS n6, pg_temp.noise() AS n7, pg_temp.noise() AS n8
    FROM generate_series(0, :orders - 1) AS i
), d AS (
    -- days in each stage: ordered 8, scheduled 28, frame 2, paint 2, trim 3, final_inspection 2,
    -- shipped 14, at_dealer 5 (medians), times 0.85 to 1.27 by model
    SELECT r.*, 0.85 + 0.06 * m AS f,
        8 * n1 AS d1, 28 * n2 AS d2, 2 * n3 AS d3, 2 * n4 AS d4, 3 * n5 AS d5, 2 * n6 AS d6, 14 * n7 AS d7, 5 * n8 AS d8
    FROM r
), t AS (
    SELECT i, gi, di, ci, m, f, r_cancel, r_late, r_extra, t1,
        t1 + make_interval(secs => 86400 * f * d1) AS t2,
        t1 + make_interval(secs => 86400 * f * (d1 + d2)) AS t3,
        t1 + make_interval(secs => 86400 * f * (d1 + d2 + d3)) AS t4,
        t1 + make_interval(secs => 86400 * f * (d1 + d2 + d3 + d4)) AS t5,
        t1 + make_interval(secs => 86400 * f * (d1 + d2 + d3 + d4 + d5)) AS t6,
        t1 + make_interval(secs => 86400 * f * (d1 + d2 + d3 + d4 + d5 + d6)) AS t7,
        t1 + make_interval(secs => 86400 * f * (d1 + d2 + d3 + d4 + d5 + d6 + d7)) AS t8,
        t1 + make_interval(secs => 86400 * f * (d1 + d2 + d3 + d4 + d5 + d6 + d7 + d8)) AS t9,
        CASE WHEN r_cancel < 0.04 THEN t1 + r_cancel_at * make_interval(secs => 86400 * f * (d1 + d2)) END AS cancel_at
    FROM d
), k AS (
    SELECT t.*, ARRAY[t1, t2, t3, t4, t5, t6, t7, t8, t9] AS ts,
        cancel_at <= :'seed_now'::timestamptz AS cancelled,
        1 + (t2 <= h)::int + (t3 <= h)::int + (t4 <= h)::int + (t5 <= h)::int + (t6 <= h)::int
          + (t7 <= h)::int + (t8 <= h)::int + (t9 <= h)::int AS k
    FROM t, LATERAL (SELECT CASE WHEN cancel_at <= :'seed_now'::timestamptz THEN cancel_at
                            ELSE :'seed_now'::timestamptz END AS h) AS horizon
)
SELECT k.*, coalesce(cancelled, false) AS is_cancelled,
    -- the first ETA comes with `scheduled`: the usual time ahead plus a margin
    CASE WHEN k >= 2 THEN (t2 + make_interval(secs => 86400 * f * 56 * 1.15))::date END AS promised,
    k >= 2 AND NOT coalesce(cancelled, false) AND r_late < 0.02 AND k >= 3 AS has_late,
    0 AS n_extra,
    (row_number() OVER (PARTITION BY gi, di ORDER BY t1, i))::int AS dealer_seq
FROM k;
-- Temporary tables have no statistics unless asked: without them the joins below plan badly.
ANALYZE seed_orders;
SELECT pg_temp.report('order histories', :orders, :'t');

-- Extra events (ETA revisions, holds and releases, in that rotation) for orders past
-- `ordered`, to reach the wanted number of events per order on average.
SELECT greatest(0, (:events::numeric * count(*) - sum(k + is_cancelled::int + has_late::int))
        / greatest(1, count(*) FILTER (WHERE k >= 2)))::float8 AS deficit
    FROM seed_orders \gset
UPDATE seed_orders SET n_extra = CASE WHEN k < 2 THEN 0 ELSE floor(r_extra * (2 * :deficit + 1))::int END;
-- A finished order does not end with a hold that was never released.
UPDATE seed_orders SET n_extra = n_extra - 1 WHERE n_extra % 3 = 2 AND (is_cancelled OR k = 9);
ALTER TABLE seed_orders ADD COLUMN last_at timestamptz, ADD COLUMN id uuid, ADD COLUMN gid uuid,
    ADD COLUMN dealer_id uuid, ADD COLUMN code text, ADD COLUMN customer_id uuid, ADD COLUMN notify_sms boolean,
    ADD COLUMN vin text, ADD COLUMN eta date;
UPDATE seed_orders o SET last_at = CASE WHEN is_cancelled THEN cancel_at WHEN k = 9 THEN t9 ELSE :'seed_now'::timestamptz END,
    id = gen_random_uuid(), gid = d.gid, dealer_id = d.id, code = d.code, customer_id = c.id, notify_sms = c.ci % 4 = 0,
    eta = CASE WHEN n_extra = 0 THEN promised
        -- the last revision (the largest j <= n_extra with j % 3 = 1) moves the ETA that far
        -- towards the real delivery date
        ELSE promised + round((t9::date - promised)
            * ((n_extra - (n_extra - 1) % 3) - 0.5) / n_extra)::int END
FROM seed_dealers d, seed_customers c
WHERE d.gi = o.gi AND d.di = o.di AND c.gi = o.gi AND c.ci = o.ci;
CREATE UNIQUE INDEX ON seed_orders (i);
ANALYZE seed_orders;

-- VINs: WMI 1FC, "SD", the run's tag, check digit, model year, plant, serial.
CREATE TEMP TABLE seed_vin AS
    SELECT y, p, pg_temp.vin_sum('1FCSD' || :'tag' || '0' || y || p || '000000') AS s
    FROM unnest('{S,T,V}'::text[]) AS y, unnest(string_to_array('ABCDEFGHJKLMNPRSTUVWXYZ0123456789', NULL)) AS p;
UPDATE seed_orders o SET vin = '1FCSD' || :'tag'
        || CASE WHEN (v.s + sd.s) % 11 = 10 THEN 'X' ELSE ((v.s + sd.s) % 11)::text END
        || v.y || v.p || lpad(sd.serial::text, 6, '0')
FROM seed_vin v, (
    SELECT i, serial, 7 * (serial / 100000 % 10) + 6 * (serial / 10000 % 10) + 5 * (serial / 1000 % 10)
        + 4 * (serial / 100 % 10) + 3 * (serial / 10 % 10) + 2 * (serial % 10) AS s
    FROM (SELECT i, i % 1000000 AS serial FROM seed_orders WHERE k >= 3) x
) sd
WHERE o.k >= 3 AND sd.i = o.i AND v.y = (ARRAY['S', 'T', 'V'])[1 + o.i % 3]
    AND v.p = substr('ABCDEFGHJKLMNPRSTUVWXYZ0123456789', 1 + (o.i / 1000000) % 33, 1);

-- Orders
SELECT clock_timestamp() AS t \gset
INSERT INTO forecourt.orders (dealer_group_id, id, dealer_id, customer_id, order_number, model_code, model_year,
        model_trim, exterior_color, interior_color, options, stage, stage_entered_at, on_hold, hold_reason, vin,
        scheduled_week, promised_eta, eta, overdue_at, cancel_reason, version, created_at, updated_at)
SELECT gid, id, dealer_id, customer_id,
    code || '-' || CASE WHEN dealer_seq < 1000000 THEN lpad(dealer_seq::text, 6, '0') ELSE dealer_seq::text END,
    (ARRAY['XC40', 'XC60', 'EX30', 'XC90', 'V60', 'EX90', 'S90', 'C40'])[1 + m], 2025 + i % 3,
    (ARRAY['Core', 'Plus', 'Ultra'])[1 + i % 3],
    (ARRAY['Glacier White', 'Onyx Black', 'Denim Blue', 'Vapour Grey', 'Forest Green'])[1 + i % 5],
    (ARRAY['Charcoal', 'Blond', 'Slate'])[1 + i % 3],
    (ARRAY['{}', '{TOW}', '{PANO}', '{TOW,PANO}', '{HUD,PANO}'])[1 + i % 5]::text[],
    CASE WHEN is_cancelled THEN 'cancelled'
        ELSE (ARRAY['ordered', 'scheduled', 'frame', 'paint', 'trim', 'final_inspection', 'shipped', 'at_dealer',
            'delivered'])[k] END,
    CASE WHEN is_cancelled THEN cancel_at ELSE ts[k] END,
    n_extra % 3 = 2, CASE WHEN n_extra % 3 = 2 THEN (ARRAY['parts_shortage', 'quality_hold', 'carrier_delay', 'damage',
        'transport_shortage', 'other'])[1 + (i + n_extra) % 6] END,
    vin, CASE WHEN k >= 2 THEN to_char(t3, 'IYYY-"W"IW') END, promised, eta,
    -- the delay rule's default allowance per stage (DelayRule.defaults)
    CASE WHEN NOT is_cancelled AND k < 9 THEN ts[k] + make_interval(days => (ARRAY[14, 35, 3, 3, 4, 3, 21, 14])[k]) END,
    CASE WHEN is_cancelled THEN 'customer changed their mind' END,
    k + n_extra + is_cancelled::int, t1, last_at
FROM seed_orders
ORDER BY gi, t1;
UPDATE forecourt.dealers d SET next_order_seq = s.next
FROM (SELECT dealer_id, max(dealer_seq) + 1 AS next FROM seed_orders GROUP BY dealer_id) s
WHERE d.id = s.dealer_id AND d.code LIKE 'Z' || :'tag' || '%';
SELECT pg_temp.report('orders', :orders, :'t');

-- Timeline events, in time order within each order, written in the order of the indexes that
-- lead with (group, order) so that each index grows at its end.
SELECT clock_timestamp() AS t \gset
WITH ins AS (
    INSERT INTO forecourt.order_events (dealer_group_id, order_id, event, occurred_at, recorded_at, source, late,
        note, reason, eta, vin, scheduled_week)
    SELECT gid, id, event, occurred_at, occurred_at + make_interval(secs => 30 + 600 * random()), source, late, NULL,
        reason, eta, vin, week
    FROM (
        -- the stages entered
        SELECT o.gid, o.id, o.t1, s.n AS ord, s.event, s.at AS occurred_at,
            CASE WHEN s.n = 1 OR s.n >= 8 THEN 'dealer' ELSE 'factory' END AS source, false AS late,
            NULL::text AS reason, CASE WHEN s.n = 2 THEN o.promised END AS eta,
            CASE WHEN s.n = 3 THEN o.vin END AS vin, CASE WHEN s.n = 2 THEN to_char(o.t3, 'IYYY-"W"IW') END AS week
        FROM seed_orders o,
            unnest('{ordered,scheduled,frame,paint,trim,final_inspection,shipped,at_dealer,delivered}'::text[], o.ts)
                WITH ORDINALITY AS s(event, at, n)
        WHERE s.n <= o.k
        UNION ALL
        SELECT gid, id, t1, 10, 'cancelled', cancel_at, 'dealer', false, 'customer changed their mind', NULL, NULL, NULL
        FROM seed_orders WHERE is_cancelled
        UNION ALL
        -- a feed that delivers `scheduled` again, an hour off, after the order moved on
        SELECT gid, id, t1, 11, 'scheduled', t2 + interval '1 hour', 'factory', true, NULL, NULL, NULL, NULL
        FROM seed_orders WHERE has_late
        UNION ALL
        SELECT o.gid, o.id, o.t1, 20 + j,
            CASE j % 3 WHEN 1 THEN 'eta' WHEN 2 THEN 'hold' ELSE 'release' END,
            o.t2 + (o.last_at - o.t2) * ((j - 0.5) / o.n_extra),
            CASE WHEN j % 3 = 1 THEN 'factory' ELSE 'factory' END, false,
            CASE WHEN j % 3 <> 0 THEN (ARRAY['parts_shortage', 'quality_hold', 'carrier_delay', 'damage',
                'transport_shortage', 'other'])[1 + (o.i + j) % 6] END,
            CASE WHEN j % 3 = 1 THEN o.promised + round((o.t9::date - o.promised) * (j - 0.5) / o.n_extra)::int END,
            NULL, NULL
        FROM seed_orders o, generate_series(1, o.n_extra) AS j
        WHERE o.n_extra > 0
    ) e
    ORDER BY gid, id, occurred_at, ord
    RETURNING 1
)
SELECT count(*) AS event_count FROM ins \gset
SELECT pg_temp.report('order events', :event_count, :'t');

-- The delay rule's history: one row per stage left by moving on.
SELECT clock_timestamp() AS t \gset
WITH ins AS (
    INSERT INTO forecourt.stage_durations (dealer_group_id, stage, order_id, seconds, left_at)
    SELECT o.gid, s.stage, o.id, greatest(0, extract(epoch FROM o.ts[s.n + 1] - s.at)), o.ts[s.n + 1]
    FROM seed_orders o,
        unnest('{ordered,scheduled,frame,paint,trim,final_inspection,shipped,at_dealer}'::text[], o.ts[1:8])
            WITH ORDINALITY AS s(stage, at, n)
    WHERE s.n < o.k
    ORDER BY o.ts[s.n + 1]
    RETURNING 1
)
SELECT pg_temp.report('stage durations', count(*), :'t') FROM ins;

-- Notifications, all already sent (2 % failed for good): email to everyone, SMS to those who
-- took it; a delay for every hold.
SELECT clock_timestamp() AS t \gset
WITH ins AS (
    INSERT INTO forecourt.notifications (dealer_group_id, id, order_id, kind, channel, revision, status, attempts,
        next_attempt_at, last_error, created_at, sent_at)
    SELECT gid, gen_random_uuid(), id, kind, channel, revision, CASE WHEN failed THEN 'failed' ELSE 'sent' END,
        CASE WHEN failed THEN 8 ELSE 1 END, at,
        CASE WHEN NOT failed THEN NULL WHEN channel = 'email' THEN 'smtp_550' ELSE 'http_410' END,
        at, CASE WHEN NOT failed THEN at + make_interval(secs => 2 + 20 * random()) END
    FROM (
        SELECT n.*, ch.channel, random() < 0.02 AS failed
        FROM (
            SELECT o.gid, o.id, o.notify_sms, s.kind, 0::bigint AS revision, s.at
            FROM seed_orders o,
                unnest('{order_confirmation,production_scheduled,vin_assigned,shipped,delivered}'::text[],
                    ARRAY[o.t1, o.t2, o.t3, o.t7, o.t9], '{1,2,3,7,9}'::int[]) AS s(kind, at, n)
            WHERE s.n <= o.k
            UNION ALL
            SELECT o.gid, o.id, o.notify_sms, 'delay', j, o.t2 + (o.last_at - o.t2) * ((j - 0.5) / o.n_extra)
            FROM seed_orders o, generate_series(1, o.n_extra) AS j
            WHERE o.n_extra > 0 AND j % 3 = 2
        ) n
        CROSS JOIN LATERAL (SELECT 'email' AS channel UNION ALL SELECT 'sms' WHERE n.notify_sms) ch
    ) x
    ORDER BY gid, id
    RETURNING 1
)
SELECT pg_temp.report('notifications', count(*), :'t') FROM ins;

-- The analytics summary tables, from the timelines just written; then the forecast each
-- order would have carried when it was scheduled, from today's quantiles (an approximation:
-- the service records it from the history of that moment).
SELECT clock_timestamp() AS t \gset
SELECT forecourt.analytics_rebuild(array_agg(id)) FROM seed_groups \gset
WITH first AS (
    SELECT f.dealer_group_id, f.order_id, f.scheduled_at, q.p50_seconds, q.p90_seconds, q.basis
    FROM seed_orders o
    JOIN forecourt.order_facts f ON f.dealer_group_id = o.gid AND f.order_id = o.id
    CROSS JOIN LATERAL (
        SELECT q.* FROM forecourt.delivery_quantiles q
        WHERE q.dealer_group_id = o.gid AND q.stage = 'scheduled'
            AND q.model_code IN ((ARRAY['XC40', 'XC60', 'EX30', 'XC90', 'V60', 'EX90', 'S90', 'C40'])[1 + o.m], '')
            AND q.basis >= 20
        ORDER BY q.model_code = '' LIMIT 1) q
    WHERE f.scheduled_at IS NOT NULL
)
UPDATE forecourt.order_facts f SET forecast_stage = 'scheduled',
    forecast_p50 = (x.scheduled_at + make_interval(secs => x.p50_seconds))::date,
    forecast_p90 = (x.scheduled_at + make_interval(secs => x.p90_seconds))::date, forecast_basis = x.basis
FROM first x WHERE f.dealer_group_id = x.dealer_group_id AND f.order_id = x.order_id;
SELECT pg_temp.report('analytics tables', (SELECT count(*) FROM seed_orders), :'t');

\if :is_super
\else
ALTER TABLE forecourt.order_events ENABLE TRIGGER order_facts_record;
\endif
COMMIT;

SELECT clock_timestamp() AS t \gset
ANALYZE forecourt.dealer_groups, forecourt.dealers, forecourt.customers, forecourt.orders, forecourt.order_events,
    forecourt.stage_durations, forecourt.notifications, forecourt.order_facts, forecourt.delivery_quantiles;
SELECT pg_temp.report('analyze', NULL, :'t');

SELECT pg_temp.report('total', NULL, :'seed_started');
-- One line for scripts: what was made and how long it took.
SELECT 'seed: ' || json_build_object(
    'tag', :'tag', 'groups', :groups, 'dealers', :groups * :dealers, 'customers', :groups * :cpg,
    'orders', :orders, 'events', :event_count,
    'delivered', (SELECT count(*) FROM seed_orders WHERE k = 9),
    'cancelled', (SELECT count(*) FROM seed_orders WHERE is_cancelled),
    'on_hold', (SELECT count(*) FROM seed_orders WHERE n_extra % 3 = 2),
    'group_ids', (SELECT json_agg(id ORDER BY gi) FROM (SELECT * FROM seed_groups ORDER BY gi LIMIT 100) g),
    'seconds', round(extract(epoch FROM clock_timestamp() - :'seed_started'::timestamptz)::numeric, 1));
