-- How many calls to the carrier a shipment took, stored with it: the carrier answers a repeated
-- request (a step executed again after a crash) with the shipment it made, attempts included,
-- so the order page shows the same figure whatever crashed.
ALTER TABLE shipments ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1 CHECK (attempts >= 1);
