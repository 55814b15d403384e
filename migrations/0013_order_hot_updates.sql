-- ETA revisions and holds update an order in place (a HOT update: no new index entries), when
-- its page has room (docs/performance.md, "What each change gained").
--
-- PostgreSQL can update a row without touching its indexes only if no column that an index
-- uses, in its key or in its WHERE, changes. orders_delayed_flag's WHERE read eta and
-- promised_eta, so every ETA revision wrote a new entry in each of the order's ten indexes. The
-- condition is now a stored generated column, which changes only when the order starts or stops
-- being on hold or late against its promise; order.list {"delayed": true} filters on it.
-- Leaving room in each page (fillfactor 85) lets the new version stay on the row's page.
--
-- Adding a stored column rewrites the table (with an exclusive lock): about 3 s per 100,000
-- orders on the benchmark machine.
ALTER TABLE forecourt.orders SET (fillfactor = 85);
ALTER TABLE forecourt.orders
    ADD COLUMN delayed_flag boolean NOT NULL GENERATED ALWAYS AS (on_hold OR coalesce(eta > promised_eta, false)) STORED;
DROP INDEX forecourt.orders_delayed_flag;
-- order.list {"delayed": true}: the time-independent half of the rule (on hold, or an ETA
-- later than promised); the overdue half is orders_overdue.
CREATE INDEX orders_delayed_flag ON forecourt.orders (dealer_group_id, created_at DESC, id DESC) WHERE delayed_flag;
