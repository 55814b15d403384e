-- The dispatcher's pick reads each channel's due notifications in due order (docs/architecture.md,
-- "Delivery"). An instance sends only the channels it can (`sms` always, `email` with a relay):
-- with one index over every pending notification, an instance without a relay read through the
-- whole email backlog, filtering it out, at every claim (49-61 ms per claim with 20,000-35,000
-- emails waiting; docs/performance.md, "The dispatcher's pick per channel").
-- Built under a lock that holds writes to notifications (and so order writes) for the time of one
-- scan of the table: about a second per million notifications (docs/operations.md, "Upgrading").
CREATE INDEX notifications_due_channel ON forecourt.notifications (channel, next_attempt_at) WHERE status = 'pending';
DROP INDEX forecourt.notifications_due;
