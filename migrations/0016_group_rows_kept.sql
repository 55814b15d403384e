-- A dealer group's row is never deleted and its id never changes (docs/architecture.md,
-- "Tenancy"): a rule, enforced here, that replaces the foreign keys to it of the two tables
-- every order write appends to, the audit log and the idempotency keys.
--
-- Those foreign keys checked nothing the rule does not: their rows are written by the service
-- only in their group's scope (row-level security's WITH CHECK pins dealer_group_id to the
-- group of the authenticated caller, whose key's own foreign key says the group exists), and
-- the only thing a foreign key to a row that can be neither deleted nor re-keyed adds is that
-- check on insert. What they cost: every write locked the group's one row FOR KEY SHARE, so
-- with writers overlapping each one made a new MultiXact of all the lockers and logged the
-- lock, on the one page every writer of the group shares (docs/performance.md, "The group's
-- row no longer locked by every write").
CREATE FUNCTION forecourt.dealer_group_kept() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'a dealer group is never deleted and its id never changes (docs/architecture.md, "Tenancy")'
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER dealer_group_kept BEFORE DELETE ON forecourt.dealer_groups
    FOR EACH ROW EXECUTE FUNCTION forecourt.dealer_group_kept();
CREATE TRIGGER dealer_group_id_kept BEFORE UPDATE ON forecourt.dealer_groups
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION forecourt.dealer_group_kept();
CREATE TRIGGER dealer_groups_not_truncated BEFORE TRUNCATE ON forecourt.dealer_groups
    FOR EACH STATEMENT EXECUTE FUNCTION forecourt.dealer_group_kept();
-- The service's role only reads groups (migration 0001 granted SELECT alone); said again here
-- because the rule above depends on it.
REVOKE UPDATE, DELETE, TRUNCATE ON forecourt.dealer_groups FROM forecourt_app;

ALTER TABLE forecourt.audit_log DROP CONSTRAINT audit_log_dealer_group_id_fkey;
ALTER TABLE forecourt.idempotency_keys DROP CONSTRAINT idempotency_keys_dealer_group_id_fkey;
