-- pgbench ceiling of forecourt-bench service (docs/performance.md, "Method"): the SQL the service
-- runs for customer.upsert_batch of 1000 new customers:
-- the read of the batch's external_refs, then one INSERT of 1000 rows with envelopes,
-- blind indexes and content MACs of the sizes the service writes (bytes made by the server
-- from sha256), and 1000 audit rows. No encryption, no outcome logic: that is the service's.
-- The login acts as forecourt_app with the bench group as its default scope (ALTER ROLE ... SET),
-- so row-level security applies as it does to the service. forecourt-bench passes :samples,
-- :group and :dealer, and samples orders into public.bench_sample. The select list is
-- Orders/Order.swift's, with names for pgbench.
\set b random(1, 2000000000)
BEGIN;
SELECT id, external_ref FROM forecourt.customers
WHERE dealer_group_id = :group AND external_ref = ANY (ARRAY(
    SELECT 'pgb-' || :b || '-' || pg_backend_pid() || '-' || i FROM generate_series(1, 1000) i));
INSERT INTO forecourt.customers (dealer_group_id, id, external_ref, key_id, full_name, email, phone, address_line1,
    address_line2, city, region, postal_code, country, email_bidx, phone_bidx, name_bidx, content_mac, notify_email,
    notify_sms, source_updated_at)
SELECT :group, gen_random_uuid(), 'pgb-' || :b || '-' || pg_backend_pid() || '-' || i, 1,
    substr(sha256(int4send(i) || int4send(:b) || '\x01'::bytea) || sha256(int4send(i) || '\x01'::bytea), 1, 54), substr(sha256(int4send(i) || int4send(:b) || '\x02'::bytea) || sha256(int4send(i) || '\x02'::bytea), 1, 58), substr(sha256(int4send(i) || int4send(:b) || '\x03'::bytea) || sha256(int4send(i) || '\x03'::bytea), 1, 47), substr(sha256(int4send(i) || int4send(:b) || '\x04'::bytea) || sha256(int4send(i) || '\x04'::bytea), 1, 48), substr(sha256(int4send(i) || int4send(:b) || '\x05'::bytea) || sha256(int4send(i) || '\x05'::bytea), 1, 44), substr(sha256(int4send(i) || int4send(:b) || '\x06'::bytea) || sha256(int4send(i) || '\x06'::bytea), 1, 43), substr(sha256(int4send(i) || int4send(:b) || '\x07'::bytea) || sha256(int4send(i) || '\x07'::bytea), 1, 51), substr(sha256(int4send(i) || int4send(:b) || '\x08'::bytea) || sha256(int4send(i) || '\x08'::bytea), 1, 39), substr(sha256(int4send(i) || int4send(:b) || '\x09'::bytea) || sha256(int4send(i) || '\x09'::bytea), 1, 35),
    sha256(int4send(i) || int4send(:b) || '\x11'::bytea), sha256(int4send(i) || int4send(:b) || '\x12'::bytea),
    sha256(int4send(i) || int4send(:b) || '\x13'::bytea), sha256(int4send(i) || int4send(:b) || '\x14'::bytea),
    true, i % 2 = 0, '2026-11-01T10:00:00Z'
FROM generate_series(1, 1000) i;
INSERT INTO forecourt.audit_log (dealer_group_id, principal_id, principal_role, method, object_type, object_id, outcome)
SELECT :group, NULL, 'crm_sync', 'customer.upsert_batch', 'customer', gen_random_uuid(), 'created'
FROM generate_series(1, 1000);
COMMIT;
