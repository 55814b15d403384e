-- Orders, their timeline of events, and the tracking-lookup failure counter.

CREATE TABLE forecourt.orders (
    dealer_group_id uuid NOT NULL,
    id uuid NOT NULL,
    dealer_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    -- Dealer code and per-dealer sequence (DLR01-000123): unique across the service.
    order_number text NOT NULL CONSTRAINT orders_order_number_key UNIQUE,
    model_code text NOT NULL CHECK (model_code ~ '^[A-Z0-9][A-Z0-9-]{0,15}$'),
    model_year integer NOT NULL CHECK (model_year BETWEEN 1990 AND 2100),
    model_trim text CHECK (length(model_trim) BETWEEN 1 AND 50),
    exterior_color text NOT NULL CHECK (length(exterior_color) BETWEEN 1 AND 50),
    interior_color text CHECK (length(interior_color) BETWEEN 1 AND 50),
    options text[] NOT NULL DEFAULT '{}' CHECK (cardinality(options) <= 100),
    stage text NOT NULL DEFAULT 'ordered' CHECK (stage IN ('ordered', 'scheduled', 'frame', 'paint', 'trim',
        'final_inspection', 'shipped', 'at_dealer', 'delivered', 'cancelled')),
    stage_entered_at timestamptz NOT NULL DEFAULT now(),
    on_hold boolean NOT NULL DEFAULT false,
    hold_reason text CHECK (hold_reason IN ('parts_shortage', 'quality_hold', 'carrier_delay', 'damage',
        'transport_shortage', 'other')),
    -- World-unique by nature (API.md section 5).
    vin text CONSTRAINT orders_vin_key UNIQUE CHECK (vin ~ '^[A-HJ-NPR-Z0-9]{17}$'),
    vin_last8 text GENERATED ALWAYS AS (right(vin, 8)) STORED,
    scheduled_week text CHECK (scheduled_week ~ '^[0-9]{4}-W[0-9]{2}$'),
    promised_eta date,
    eta date,
    -- When the order has been in its stage far longer than usual for its group (see docs).
    overdue_at timestamptz,
    cancel_reason text CHECK (length(cancel_reason) <= 500),
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dealer_group_id, id),
    FOREIGN KEY (dealer_group_id, dealer_id) REFERENCES forecourt.dealers (dealer_group_id, id),
    FOREIGN KEY (dealer_group_id, customer_id) REFERENCES forecourt.customers (dealer_group_id, id),
    CHECK (on_hold = (hold_reason IS NOT NULL))
);

-- Keyset pagination: newest first within a group or a dealer.
CREATE INDEX orders_list ON forecourt.orders (dealer_group_id, created_at DESC, id DESC);
-- The factory's order.list spans every group.
CREATE INDEX orders_factory_list ON forecourt.orders (created_at DESC, id DESC);
CREATE INDEX orders_dealer_list ON forecourt.orders (dealer_group_id, dealer_id, created_at DESC, id DESC);
CREATE INDEX orders_customer ON forecourt.orders (dealer_group_id, customer_id);
CREATE INDEX orders_vin_last8 ON forecourt.orders (vin_last8) WHERE vin_last8 IS NOT NULL;
CREATE INDEX orders_overdue ON forecourt.orders (dealer_group_id, overdue_at)
    WHERE overdue_at IS NOT NULL AND stage NOT IN ('delivered', 'cancelled');
-- order.list {"delayed": true}: the time-independent half of the rule (on hold, or an ETA
-- later than promised); the planner ORs it with orders_overdue in a bitmap scan.
CREATE INDEX orders_delayed_flag ON forecourt.orders (dealer_group_id, created_at DESC, id DESC)
    WHERE on_hold OR eta > promised_eta;

CREATE TABLE forecourt.order_events (
    dealer_group_id uuid NOT NULL,
    order_id uuid NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    event text NOT NULL CHECK (event IN ('ordered', 'scheduled', 'frame', 'paint', 'trim', 'final_inspection',
        'shipped', 'at_dealer', 'delivered', 'cancelled', 'amended', 'hold', 'release', 'eta')),
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    source text NOT NULL CHECK (source IN ('dealer', 'factory', 'system')),
    principal_id uuid,
    late boolean NOT NULL DEFAULT false,
    note text CHECK (length(note) <= 1000),
    reason text CHECK (length(reason) <= 500),
    eta date,
    vin text,
    scheduled_week text,
    PRIMARY KEY (dealer_group_id, order_id, seq),
    FOREIGN KEY (dealer_group_id, order_id) REFERENCES forecourt.orders (dealer_group_id, id)
);
-- Feeds deliver at least once: a repeat of (event, occurred_at) is found and ignored.
CREATE INDEX order_events_repeat ON forecourt.order_events (dealer_group_id, order_id, event, occurred_at);
CREATE INDEX order_events_timeline ON forecourt.order_events (dealer_group_id, order_id, occurred_at);

-- How long orders of a group stayed in each stage: one row per stage left by moving on.
-- The "far longer than usual" delay rule reads the recent ones (docs/architecture.md).
CREATE TABLE forecourt.stage_durations (
    dealer_group_id uuid NOT NULL,
    stage text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    order_id uuid NOT NULL,
    seconds double precision NOT NULL CHECK (seconds >= 0),
    left_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dealer_group_id, stage, seq)
);

-- Failed track.lookup attempts per vin_last8, shared by every instance of the service.
CREATE TABLE forecourt.track_lookup_failures (
    vin_last8 text PRIMARY KEY CHECK (length(vin_last8) = 8),
    window_started_at timestamptz NOT NULL,
    failures integer NOT NULL
);

CREATE FUNCTION forecourt.current_vin_last8() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('forecourt.vin_last8', true), '') $$;

ALTER TABLE forecourt.orders ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE forecourt.order_events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE forecourt.stage_durations ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE forecourt.track_lookup_failures ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant ON forecourt.orders TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
-- The factory feed reads orders of every group; it writes after scoping to the order's group.
CREATE POLICY factory_read ON forecourt.orders FOR SELECT TO forecourt_app
    USING (forecourt.current_scope() = 'factory');
-- track.lookup sees only orders whose VIN ends with the looked-up characters.
CREATE POLICY portal_read ON forecourt.orders FOR SELECT TO forecourt_app
    USING (forecourt.current_scope() = 'portal' AND vin_last8 = forecourt.current_vin_last8()
        AND (NULLIF(current_setting('forecourt.portal_group', true), '') IS NULL
            OR dealer_group_id = NULLIF(current_setting('forecourt.portal_group', true), '')::uuid));
CREATE POLICY tenant ON forecourt.order_events TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
CREATE POLICY factory_read ON forecourt.order_events FOR SELECT TO forecourt_app
    USING (forecourt.current_scope() = 'factory');
-- track.lookup reads the timeline of the orders it admits (for the stage dates)...
CREATE POLICY portal_read ON forecourt.order_events FOR SELECT TO forecourt_app
    USING (forecourt.current_scope() = 'portal' AND EXISTS (
        SELECT 1 FROM forecourt.orders o
        WHERE o.dealer_group_id = order_events.dealer_group_id AND o.id = order_events.order_id));
-- ... and the name index of their customers, nothing of any other customer.
CREATE POLICY portal_read ON forecourt.customers FOR SELECT TO forecourt_app
    USING (forecourt.current_scope() = 'portal' AND EXISTS (
        SELECT 1 FROM forecourt.orders o
        WHERE o.dealer_group_id = customers.dealer_group_id AND o.customer_id = customers.id));
CREATE POLICY tenant ON forecourt.stage_durations TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
CREATE POLICY portal ON forecourt.track_lookup_failures TO forecourt_app
    USING (forecourt.current_scope() = 'portal' AND vin_last8 = forecourt.current_vin_last8());

CREATE POLICY operator ON forecourt.orders TO CURRENT_USER USING (true);
CREATE POLICY operator ON forecourt.order_events TO CURRENT_USER USING (true);
CREATE POLICY operator ON forecourt.track_lookup_failures TO CURRENT_USER USING (true);
CREATE POLICY operator ON forecourt.stage_durations TO CURRENT_USER USING (true);

GRANT SELECT, INSERT, UPDATE ON forecourt.orders TO forecourt_app;
GRANT SELECT, INSERT ON forecourt.order_events TO forecourt_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON forecourt.track_lookup_failures TO forecourt_app;
GRANT SELECT, INSERT ON forecourt.stage_durations TO forecourt_app;
