-- Order numbers that do not serialise a dealer's orders (docs/architecture.md, "Orders").
-- (Lookups by id alone, the factory's, go by orders_id, made by 0007.)
--
-- Order numbers from a sequence per dealer, taken by next_order_number(dealer) in the
-- creating transaction. A sequence hands out numbers without a lock held to commit, so
-- concurrent orders of one dealer no longer wait for each other's WAL flush (the counter
-- in dealers.next_order_seq was a row lock held until then). A transaction that takes a
-- number and then fails leaves a gap (docs/protocol.md). dealers.next_order_seq is now only
-- where a dealer's sequence starts (its numbers before this migration, or a bulk load's).
--
-- The sequences (forecourt.order_seq_<dealer id, hex>) are made on first use, by this
-- SECURITY DEFINER function (forecourt_app may not create objects), which hands out
-- numbers only for dealers of the caller's own group (forecourt.current_group()).
CREATE FUNCTION forecourt.next_order_number(p_dealer uuid) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v_code text;
    v_start bigint;
    v_sequence text := 'order_seq_' || replace(p_dealer::text, '-', '');
    v_number bigint;
BEGIN
    SELECT d.code, d.next_order_seq INTO v_code, v_start
    FROM forecourt.dealers d WHERE d.dealer_group_id = forecourt.current_group() AND d.id = p_dealer;
    IF v_code IS NULL THEN
        RAISE EXCEPTION 'no such dealer in the current group' USING ERRCODE = 'P0002';
    END IF;
    IF to_regclass('forecourt.' || v_sequence) IS NULL THEN
        -- Two first orders of a dealer at once: the second finds the first's sequence.
        BEGIN
            EXECUTE format('CREATE SEQUENCE forecourt.%I START %s', v_sequence, greatest(v_start, 1));
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            NULL;
        END;
    END IF;
    v_number := nextval(('forecourt.' || v_sequence)::regclass);
    RETURN v_code || '-' || lpad(v_number::text, greatest(6, length(v_number::text)), '0');
END
$$;
REVOKE ALL ON FUNCTION forecourt.next_order_number(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION forecourt.next_order_number(uuid) TO forecourt_app;

COMMENT ON COLUMN forecourt.dealers.next_order_seq IS
    'Where the dealer''s order-number sequence (forecourt.order_seq_<id>) starts when first used; not advanced since migration 0010.';
