-- Notification delivery (docs/architecture.md, "Delivery"): leases for the dispatcher, the
-- per-webhook state of `sms` notifications, and the narrow `delivery` scope in which the
-- dispatcher finds due notifications across dealer groups.

-- A dispatcher claims due rows for a short lease (claimed_by: the instance, claimed_until: the
-- lease's end), commits, sends, and records the outcome. A lease that ends without an outcome
-- (a crashed instance) makes the row claimable again.
ALTER TABLE forecourt.notifications
    ADD COLUMN claimed_by uuid,
    ADD COLUMN claimed_until timestamptz,
    ADD CONSTRAINT notifications_last_error_code CHECK (last_error ~ '^[a-z0-9_]{1,40}$'),
    ADD CONSTRAINT notifications_claim CHECK ((claimed_by IS NULL) = (claimed_until IS NULL));

-- notification.list pages through one order's notifications in (created_at, id) order.
CREATE INDEX notifications_order ON forecourt.notifications (dealer_group_id, order_id, created_at, id);

-- Each webhook's delivery of an sms notification, retried on its own. The rows are made when
-- the notification is first handled, for the group's webhooks of its kind at that time.
CREATE TABLE forecourt.webhook_deliveries (
    dealer_group_id uuid NOT NULL,
    notification_id uuid NOT NULL,
    webhook_id uuid NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text CHECK (last_error ~ '^[a-z0-9_]{1,40}$'),
    sent_at timestamptz,
    PRIMARY KEY (dealer_group_id, notification_id, webhook_id),
    FOREIGN KEY (dealer_group_id, notification_id) REFERENCES forecourt.notifications (dealer_group_id, id),
    -- A deleted webhook is owed nothing more.
    FOREIGN KEY (dealer_group_id, webhook_id) REFERENCES forecourt.webhooks (dealer_group_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_webhook ON forecourt.webhook_deliveries (dealer_group_id, webhook_id);

-- webhook.list pages in (created_at, id) order.
CREATE INDEX webhooks_list ON forecourt.webhooks (dealer_group_id, created_at, id);

ALTER TABLE forecourt.webhook_deliveries ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON forecourt.webhook_deliveries TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
CREATE POLICY operator ON forecourt.webhook_deliveries TO CURRENT_USER USING (true);
GRANT SELECT, INSERT, UPDATE ON forecourt.webhook_deliveries TO forecourt_app;

-- The dispatcher's scope ('delivery'): it reads the queue of every group and takes or gives
-- back leases, nothing else. Messages are rendered and outcomes recorded in each
-- notification's own group scope, under the ordinary tenant policies.
CREATE POLICY delivery_read ON forecourt.notifications FOR SELECT TO forecourt_app
    USING (forecourt.current_scope() = 'delivery');
CREATE POLICY delivery_lease ON forecourt.notifications FOR UPDATE TO forecourt_app
    USING (forecourt.current_scope() = 'delivery' AND status = 'pending')
    WITH CHECK (forecourt.current_scope() = 'delivery' AND status = 'pending');
