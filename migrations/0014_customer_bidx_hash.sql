-- The blind indexes are searched by equality only (customer.find by email or phone: `= ANY`
-- of the candidates under each key) and their values are HMAC outputs, uniformly random: every
-- insert into a B-tree on (dealer_group_id, bidx) lands on a random leaf, descends and compares
-- 48-byte keys, and splits pages. A hash index on the value alone costs a fraction of that per
-- row (customer.upsert_batch writes two per customer), holds 4 bytes of hash per entry instead
-- of the key, and still finds a value's rows in one probe; the group is then checked on the row,
-- as the tenant policy checks it anyway. Blind index keys are per group, so two groups' values
-- never collide in practice (docs/performance.md, "What each change gained").
DROP INDEX forecourt.customers_email_bidx;
DROP INDEX forecourt.customers_phone_bidx;
CREATE INDEX customers_email_bidx ON forecourt.customers USING hash (email_bidx) WHERE email_bidx IS NOT NULL;
CREATE INDEX customers_phone_bidx ON forecourt.customers USING hash (phone_bidx) WHERE phone_bidx IS NOT NULL;
