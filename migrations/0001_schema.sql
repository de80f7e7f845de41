-- ZeroApp storefront schema: reference data (products, users, shipping zones) and the
-- order-fulfillment domain's tables. Applied once, inside one transaction, by app/src/db.
--
-- Conventions: every table is STRICT (SQLite checks column types); money is INTEGER cents;
-- times are INTEGER milliseconds since the Unix epoch, supplied by the caller (the engine's
-- journaled clock), never read by SQL; booleans are INTEGER 0/1. Rows written by durable steps
-- carry a UNIQUE key (order id or event_key), so a step replayed after a crash changes nothing.

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    sku         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    stock       INTEGER NOT NULL CHECK (stock >= 0)
) STRICT;

CREATE TABLE users (
    id       TEXT    PRIMARY KEY,
    name     TEXT    NOT NULL,
    email    TEXT    NOT NULL UNIQUE,
    is_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1))
) STRICT;

CREATE TABLE shipping_zones (
    code       TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    cost_cents INTEGER NOT NULL CHECK (cost_cents >= 0)
) STRICT;

-- One row per order, created at checkout. `items` is a JSON array of the priced lines
-- (product id, sku, name, quantity, unit price), frozen at checkout so later price changes do
-- not alter a placed order. `status` is the Rust `OrderStatus` as text (no CHECK, so adding a
-- status needs no migration).
CREATE TABLE orders (
    id             TEXT    PRIMARY KEY,
    user_id        TEXT    NOT NULL REFERENCES users (id),
    items          TEXT    NOT NULL CHECK (json_valid(items)),
    subtotal_cents INTEGER NOT NULL CHECK (subtotal_cents >= 0),
    shipping_cents INTEGER NOT NULL CHECK (shipping_cents >= 0),
    total_cents    INTEGER NOT NULL CHECK (total_cents = subtotal_cents + shipping_cents),
    zone           TEXT    NOT NULL REFERENCES shipping_zones (code),
    address        TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX orders_by_user ON orders (user_id, created_at_ms DESC);
CREATE INDEX orders_by_time ON orders (created_at_ms DESC);

-- Every status an order has been in, in order; `event_key` makes each change happen once.
CREATE TABLE order_history (
    id        INTEGER PRIMARY KEY,
    order_id  TEXT    NOT NULL REFERENCES orders (id),
    status    TEXT    NOT NULL,
    detail    TEXT    NOT NULL DEFAULT '',
    at_ms     INTEGER NOT NULL,
    event_key TEXT    NOT NULL UNIQUE
) STRICT;
CREATE INDEX order_history_by_order ON order_history (order_id, id);

-- Notifications for one user, or for the admins when user_id is NULL. `order_id` is not a
-- foreign key, so a notification never depends on the order row being written first.
CREATE TABLE notifications (
    id        INTEGER PRIMARY KEY,
    user_id   TEXT    REFERENCES users (id),
    order_id  TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    message   TEXT    NOT NULL,
    at_ms     INTEGER NOT NULL,
    read      INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),
    event_key TEXT    NOT NULL UNIQUE
) STRICT;
CREATE INDEX notifications_by_user ON notifications (user_id, id);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read = 0;

-- Stock taken from `products.stock` for an order. A row stays after shipping (the stock is
-- gone); `released = 1` once a compensation has returned the quantity. So at any time, for each
-- product: seeded stock + restocks = products.stock + SUM(quantity WHERE released = 0).
CREATE TABLE stock_reservations (
    order_id      TEXT    NOT NULL,
    product_id    INTEGER NOT NULL REFERENCES products (id),
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    released      INTEGER NOT NULL DEFAULT 0 CHECK (released IN (0, 1)),
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (order_id, product_id)
) STRICT;
CREATE INDEX stock_reservations_held ON stock_reservations (product_id) WHERE released = 0;

-- The payment-gateway simulator's requests; `awakeable_id` is what resolves the waiting checkout.
CREATE TABLE payment_requests (
    order_id      TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id),
    amount_cents  INTEGER NOT NULL CHECK (amount_cents >= 0),
    awakeable_id  TEXT    NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'paid', 'declined')),
    created_at_ms INTEGER NOT NULL,
    decided_at_ms INTEGER,
    CHECK ((status = 'pending') = (decided_at_ms IS NULL))
) STRICT;
CREATE INDEX payment_requests_pending ON payment_requests (created_at_ms) WHERE status = 'pending';
CREATE INDEX payment_requests_by_user ON payment_requests (user_id);

-- At most one shipment per order; a compensation cancels it rather than deleting it.
CREATE TABLE shipments (
    order_id        TEXT    PRIMARY KEY,
    carrier         TEXT    NOT NULL,
    tracking_number TEXT    NOT NULL UNIQUE,
    status          TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
    created_at_ms   INTEGER NOT NULL,
    cancelled_at_ms INTEGER,
    CHECK ((status = 'cancelled') = (cancelled_at_ms IS NOT NULL))
) STRICT;
CREATE INDEX shipments_active ON shipments (status) WHERE status = 'active';
