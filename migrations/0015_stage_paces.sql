-- The delay rule's p90 of each group's recent durations of each stage, kept for a minute
-- (docs/architecture.md, "Delays"): every new order and every stage change computed it from
-- the group's latest 200 durations of the stage (200 rows read and sorted: about 0.2 ms, the
-- largest part of creating an order); now the first write after a minute does, and the others
-- read this row.
CREATE TABLE forecourt.stage_paces (
    dealer_group_id uuid NOT NULL,
    stage text NOT NULL,
    -- NULL while the group has fewer durations of the stage than the rule needs
    p90_seconds double precision,
    computed_at timestamptz NOT NULL,
    PRIMARY KEY (dealer_group_id, stage)
);

ALTER TABLE forecourt.stage_paces ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON forecourt.stage_paces TO forecourt_app
    USING (dealer_group_id = forecourt.current_group());
CREATE POLICY operator ON forecourt.stage_paces TO CURRENT_USER USING (true);
GRANT SELECT, INSERT, UPDATE ON forecourt.stage_paces TO forecourt_app;
