-- The carrier the shopper chose at checkout. ZeroPost ships (with transient failures);
-- NoPost refuses every parcel, so that a person can play the shipping-failure scenario from
-- the cart (docs/app.md).
ALTER TABLE orders ADD COLUMN carrier TEXT NOT NULL DEFAULT 'ZeroPost';
