-- Notifications: a transactional outbox written with the change that causes it, and the
-- dealer groups' webhooks. No personal data at rest here: messages are rendered at send
-- time from the (encrypted) customer record.

CREATE TABLE forecourt.notifications (
    dealer_group_id uuid NOT NULL,
    id uuid NOT NULL,
    order_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('order_confirmation', 'production_scheduled', 'vin_assigned', 'shipped',
        'delivered', 'delay')),
    channel text NOT NULL CHECK (channel IN ('email', 'sms')),
    -- 0 for every kind but delay, which is queued once per revision (the order event's seq).
    revision bigint NOT NULL DEFAULT 0,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- The last failure's class (smtp_4xx, http_500, timeout...): never message text.
    last_error text CHECK (length(last_error) <= 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    PRIMARY KEY (dealer_group_id, id),
    UNIQUE (dealer_group_id, order_id, kind, channel, revision),
    FOREIGN KEY (dealer_group_id, order_id) REFERENCES forecourt.orders (dealer_group_id, id)
);
CREATE INDEX notifications_due ON forecourt.notifications (next_attempt_at) WHERE status = 'pending';

CREATE TABLE forecourt.webhooks (
    dealer_group_id uuid NOT NULL REFERENCES forecourt.dealer_groups (id),
    id uuid NOT NULL,
    url text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
    -- The signing secret, sealed by the service's field encryption.
    secret bytea NOT NULL,
    kinds text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dealer_group_id, id)
);

ALTER TABLE forecourt.notifications ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE forecourt.webhooks ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON forecourt.notifications TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
CREATE POLICY tenant ON forecourt.webhooks TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
CREATE POLICY operator ON forecourt.notifications TO CURRENT_USER USING (true);
CREATE POLICY operator ON forecourt.webhooks TO CURRENT_USER USING (true);

GRANT SELECT, INSERT, UPDATE ON forecourt.notifications TO forecourt_app;
GRANT SELECT, INSERT, DELETE ON forecourt.webhooks TO forecourt_app;
