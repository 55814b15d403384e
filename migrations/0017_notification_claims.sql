-- A claimed notification is a pending one (docs/architecture.md, "Delivery"): every path that
-- ends a notification (the dispatcher's record, a customer's erasure) clears its lease in the
-- same UPDATE, and the claim takes pending rows only. Declared here so that the dispatcher's
-- lookups of the rows it holds can test the lease alone: stating `status = 'pending'` as well
-- let the planner read the partial index `notifications_due` for them, which its statistics
-- can show as empty while a backlog fills it, and every lookup then scanned the whole backlog
-- (docs/performance.md, "The dispatcher's lookups by primary key").
-- NOT VALID then VALIDATE: the check of existing rows is one scan of the table.
ALTER TABLE forecourt.notifications
    ADD CONSTRAINT notifications_claimed_pending CHECK (claimed_by IS NULL OR status = 'pending') NOT VALID;
ALTER TABLE forecourt.notifications VALIDATE CONSTRAINT notifications_claimed_pending;
