-- Order changes notify after their commit (docs/architecture.md, "Transactions"): the
-- notification names the change's timeline entry by its seq, so the service takes the seq
-- from order_events' own sequence before inserting the entry (OVERRIDING SYSTEM VALUE), in
-- the round trip that locks the order. nextval needs USAGE on the sequence.
GRANT USAGE ON SEQUENCE forecourt.order_events_seq_seq TO forecourt_app;
