-- Foundation: roles, the schema, tenancy helpers, dealer groups, dealers, API keys,
-- the audit log and idempotency records.
--
-- Tenancy: every transaction of the service sets forecourt.dealer_group_id (or a narrower
-- scope) with set_config(..., true); the policies below admit only that group's rows, for
-- forecourt_app, with RLS enabled and forced. The owner that runs migrations and operator
-- commands is admitted by an `operator` policy of its own.

-- Roles are cluster-wide: two databases of one cluster may be migrated at once, so a role
-- created meanwhile by the other is not an error. This replaced IF NOT EXISTS checks, which
-- raced; for a database that applied an earlier text (before this block, or before these
-- comments) nothing differs:
-- amends checksum bff01b1fe4a7fecee211869d7583723fefb0a961f960b3226acfa8681c225ce0
-- amends checksum c96e00b85e4c1986d53b9f29c511600f1f6b9d1233a692ad79558ac5768ad50c
DO $$
BEGIN
    BEGIN
        CREATE ROLE forecourt_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE forecourt_analyst NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
END
$$;

CREATE SCHEMA forecourt;
REVOKE ALL ON SCHEMA forecourt FROM PUBLIC;
GRANT USAGE ON SCHEMA forecourt TO forecourt_app;
-- The service refuses to start with pending migrations, so it reads their record.
-- (forecourt migrate creates this table before it applies the first file.)
GRANT SELECT ON public.forecourt_schema_migrations TO forecourt_app;

-- The dealer group of the current transaction; NULL (no rows visible) when none is set.
CREATE FUNCTION forecourt.current_group() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('forecourt.dealer_group_id', true), '')::uuid $$;

-- A scope wider or narrower than one group: 'factory', 'portal', 'auth'; NULL otherwise.
CREATE FUNCTION forecourt.current_scope() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('forecourt.scope', true), '') $$;

-- The principal making the change (for change feeds and audit), NULL when not set.
CREATE FUNCTION forecourt.current_principal() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('forecourt.principal_id', true), '')::uuid $$;

CREATE TABLE forecourt.dealer_groups (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE forecourt.dealers (
    dealer_group_id uuid NOT NULL REFERENCES forecourt.dealer_groups (id),
    id uuid NOT NULL,
    -- Maker-assigned, unique across the service (API.md section 5).
    code text NOT NULL CONSTRAINT dealers_code_key UNIQUE CHECK (code ~ '^[A-Z0-9]{2,12}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    region text CHECK (length(region) <= 100),
    timezone text CHECK (length(timezone) <= 64),
    -- The next order number of this dealer; taken under the row lock, so failed calls leave no gaps.
    next_order_seq bigint NOT NULL DEFAULT 1,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dealer_group_id, id)
);

-- One row per API key; the key is the principal. Only a SHA-256 of the secret is stored.
-- factory keys, and portal keys for every group, have no dealer group.
CREATE TABLE forecourt.api_keys (
    id uuid PRIMARY KEY,
    dealer_group_id uuid REFERENCES forecourt.dealer_groups (id),
    dealer_id uuid,
    role text NOT NULL CHECK (role IN ('group_admin', 'dealer_manager', 'sales', 'crm_sync', 'auditor', 'factory', 'portal')),
    label text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    -- The readable start of the key (fc_live_xxxx), to tell keys apart in lists.
    key_prefix text NOT NULL,
    -- World-unique by nature: a key is looked up before its group is known.
    key_hash bytea NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE CHECK (length(key_hash) = 32),
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    UNIQUE (dealer_group_id, id),
    FOREIGN KEY (dealer_group_id, dealer_id) REFERENCES forecourt.dealers (dealer_group_id, id),
    CHECK ((role IN ('dealer_manager', 'sales')) = (dealer_id IS NOT NULL)),
    CHECK (role <> 'factory' OR dealer_group_id IS NULL),
    CHECK (role IN ('factory', 'portal') OR dealer_group_id IS NOT NULL)
);

-- The hash of the key presented in this transaction (scope 'auth').
CREATE FUNCTION forecourt.current_key_hash() RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT decode(NULLIF(current_setting('forecourt.key_hash', true), ''), 'hex') $$;

-- Who did what, when, to which object: append-only, no personal data.
CREATE TABLE forecourt.audit_log (
    dealer_group_id uuid NOT NULL REFERENCES forecourt.dealer_groups (id),
    seq bigint GENERATED ALWAYS AS IDENTITY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    principal_id uuid,
    principal_role text NOT NULL,
    method text NOT NULL,
    object_type text,
    object_id uuid,
    outcome text NOT NULL,
    PRIMARY KEY (dealer_group_id, seq)
);

-- Idempotency keys of creating calls (order.create), kept at least 24 hours.
CREATE TABLE forecourt.idempotency_keys (
    dealer_group_id uuid NOT NULL REFERENCES forecourt.dealer_groups (id),
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    method text NOT NULL,
    -- SHA-256 of the call's canonical parameters: same key, other parameters is a conflict.
    request_hash bytea NOT NULL,
    object_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dealer_group_id, key)
);
CREATE INDEX idempotency_keys_created_at ON forecourt.idempotency_keys (created_at);

-- Row-level security, enabled and forced, on every tenant table.
ALTER TABLE forecourt.dealer_groups ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE forecourt.dealers ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE forecourt.api_keys ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE forecourt.audit_log ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE forecourt.idempotency_keys ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant ON forecourt.dealer_groups TO forecourt_app
    USING (id = forecourt.current_group());
CREATE POLICY tenant ON forecourt.dealers TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
CREATE POLICY tenant ON forecourt.api_keys TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
-- session.authenticate and revocation checks see exactly the key whose secret they hold.
CREATE POLICY authentication ON forecourt.api_keys FOR SELECT TO forecourt_app
    USING (forecourt.current_scope() = 'auth' AND key_hash = forecourt.current_key_hash());
CREATE POLICY tenant ON forecourt.audit_log TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
CREATE POLICY tenant ON forecourt.idempotency_keys TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());

-- The owner (the role running migrations and operator commands) sees every row.
CREATE POLICY operator ON forecourt.dealer_groups TO CURRENT_USER USING (true);
CREATE POLICY operator ON forecourt.dealers TO CURRENT_USER USING (true);
CREATE POLICY operator ON forecourt.api_keys TO CURRENT_USER USING (true);
CREATE POLICY operator ON forecourt.audit_log TO CURRENT_USER USING (true);
CREATE POLICY operator ON forecourt.idempotency_keys TO CURRENT_USER USING (true);

GRANT SELECT ON forecourt.dealer_groups TO forecourt_app;
GRANT SELECT, INSERT, UPDATE ON forecourt.dealers TO forecourt_app;
GRANT SELECT, INSERT, UPDATE (revoked_at) ON forecourt.api_keys TO forecourt_app;
-- Append-only: no UPDATE or DELETE.
GRANT SELECT, INSERT ON forecourt.audit_log TO forecourt_app;
GRANT SELECT, INSERT, DELETE ON forecourt.idempotency_keys TO forecourt_app;
