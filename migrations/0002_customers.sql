-- Customers. Personal fields are AES-256-GCM envelopes made by the service (bytea); the
-- database never sees them in clear. Exact search goes through keyed blind indexes.
--
-- The change feed (customer.changes): every write stamps the row with its transaction id
-- (pg_current_xact_id(), xid8) and a sequence number. Readers return only rows whose
-- transaction id is below the xmin of their snapshot: every such transaction has ended,
-- and every later write gets a larger transaction id, so a cursor (xid, seq) never skips
-- a row that commits late. See docs/architecture.md.

CREATE SEQUENCE forecourt.customer_change_seq;

CREATE TABLE forecourt.customers (
    dealer_group_id uuid NOT NULL REFERENCES forecourt.dealer_groups (id),
    id uuid NOT NULL,
    -- The CRM's own identifier: not personal data, stored plainly, unique per group.
    external_ref text CHECK (length(external_ref) BETWEEN 1 AND 200),
    -- The root key version that encrypted the fields (for reencrypt); NULL once erased.
    key_id integer,
    full_name bytea,
    email bytea,
    phone bytea,
    address_line1 bytea,
    address_line2 bytea,
    city bytea,
    region bytea,
    postal_code bytea,
    country bytea,
    -- HMAC-SHA256 blind indexes of the normalised values, keyed per group and kind.
    email_bidx bytea CHECK (length(email_bidx) = 32),
    phone_bidx bytea CHECK (length(phone_bidx) = 32),
    name_bidx bytea CHECK (length(name_bidx) = 32),
    -- A keyed MAC of the normalised content, to tell an unchanged CRM upsert without decrypting.
    content_mac bytea,
    notify_email boolean NOT NULL DEFAULT false,
    notify_sms boolean NOT NULL DEFAULT false,
    -- The CRM's last-modified time of the record (customer.upsert_batch stale check).
    source_updated_at timestamptz,
    erased_at timestamptz,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    change_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    change_seq bigint NOT NULL DEFAULT nextval('forecourt.customer_change_seq'),
    changed_by uuid,
    PRIMARY KEY (dealer_group_id, id),
    UNIQUE (dealer_group_id, external_ref),
    -- An erased customer keeps no ciphertext and no index value.
    CHECK (erased_at IS NULL OR (full_name IS NULL AND email IS NULL AND phone IS NULL
        AND address_line1 IS NULL AND address_line2 IS NULL AND city IS NULL AND region IS NULL
        AND postal_code IS NULL AND country IS NULL AND email_bidx IS NULL AND phone_bidx IS NULL
        AND name_bidx IS NULL AND content_mac IS NULL)),
    CHECK (erased_at IS NOT NULL OR full_name IS NOT NULL)
);

CREATE INDEX customers_email_bidx ON forecourt.customers (dealer_group_id, email_bidx) WHERE email_bidx IS NOT NULL;
CREATE INDEX customers_phone_bidx ON forecourt.customers (dealer_group_id, phone_bidx) WHERE phone_bidx IS NOT NULL;
CREATE INDEX customers_name_bidx ON forecourt.customers (dealer_group_id, name_bidx) WHERE name_bidx IS NOT NULL;
CREATE INDEX customers_changes ON forecourt.customers (dealer_group_id, change_xid, change_seq);
CREATE INDEX customers_key_id ON forecourt.customers (key_id) WHERE key_id IS NOT NULL;

-- Stamps every change for the feed, whatever statement made it. A change is an insert or
-- an update that moves `version` (every real change does, erasure included); re-encryption
-- rewrites ciphertexts without changing content or version, so it keeps the row's stamp and
-- does not echo every customer into every CRM's feed.
CREATE FUNCTION forecourt.customers_stamp_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.version IS DISTINCT FROM OLD.version THEN
        NEW.change_xid := pg_current_xact_id();
        NEW.change_seq := nextval('forecourt.customer_change_seq');
        NEW.changed_by := forecourt.current_principal();
    ELSE
        NEW.change_xid := OLD.change_xid;
        NEW.change_seq := OLD.change_seq;
        NEW.changed_by := OLD.changed_by;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER customers_stamp_change BEFORE INSERT OR UPDATE ON forecourt.customers
    FOR EACH ROW EXECUTE FUNCTION forecourt.customers_stamp_change();

ALTER TABLE forecourt.customers ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON forecourt.customers TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
CREATE POLICY operator ON forecourt.customers TO CURRENT_USER USING (true);

GRANT SELECT, INSERT, UPDATE ON forecourt.customers TO forecourt_app;
GRANT USAGE ON SEQUENCE forecourt.customer_change_seq TO forecourt_app;
