-- Fewer index entries per order write (docs/performance.md, "What each change gained"): every
-- timeline entry, notification and order paid for indexes that no query needs.
--
-- - order_events_repeat and order_events_timeline: every read of the timeline is of one order
--   (the feed's checks after the lock, order.timeline, track.lookup's stage dates, the event
--   push); the primary key (dealer_group_id, order_id, seq) finds an order's entries, which
--   are few, and the rest is a filter or a sort of those rows.
-- - notifications_order: notification.list pages through one order's notifications, found by
--   the prefix (dealer_group_id, order_id) of the unique key of their kind, channel and revision.
-- - orders_vin_key: an order has no VIN until the factory assigns one, and a unique constraint
--   indexes every NULL; a unique index of the VINs that exist keeps the same rule (and the same
--   name, which the service's error mapping reads) without an entry per new order.
DROP INDEX forecourt.order_events_repeat;
DROP INDEX forecourt.order_events_timeline;
DROP INDEX forecourt.notifications_order;
ALTER TABLE forecourt.orders DROP CONSTRAINT orders_vin_key;
CREATE UNIQUE INDEX orders_vin_key ON forecourt.orders (vin) WHERE vin IS NOT NULL;
