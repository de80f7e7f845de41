-- Reference data for the storefront: a small outdoor-gear catalog, the demo users (one admin)
-- and the shipping zones. Applied once; later stock changes come from orders, not from here.

INSERT INTO products (id, sku, name, description, price_cents, stock) VALUES
    (1,  'TENT-2P',   'Ridgeline 2-Person Tent',     'Freestanding three-season tent, 1.9 kg, two doors and vestibules.', 24900, 25),
    (2,  'TENT-4P',   'Basecamp 4-Person Tent',      'Family dome tent with a full-coverage fly and a gear loft.',         38900, 12),
    (3,  'BAG-0C',    'Alpine Down Sleeping Bag',    '800-fill down mummy bag rated to 0 °C, with compression sack.',      31900, 18),
    (4,  'BAG-10C',   'Summer Synthetic Bag',        'Lightweight synthetic bag rated to 10 °C, machine washable.',         8900, 40),
    (5,  'PAD-INF',   'Insulated Air Pad',           'Inflatable sleeping pad, R-value 4.2, packs to a water bottle.',    14900, 30),
    (6,  'PAD-FOAM',  'Closed-Cell Foam Pad',        'Indestructible folding foam pad, R-value 2.0.',                       4500, 60),
    (7,  'PACK-45',   'Trailhead 45 L Backpack',     'Adjustable torso, hip-belt pockets and a rain cover.',              17900, 20),
    (8,  'PACK-20',   'Daytrip 20 L Pack',           'Light daypack with hydration sleeve and stretch side pockets.',      6900, 45),
    (9,  'STOVE-CAN', 'Canister Stove',              'Compact 3,000 W canister stove with piezo igniter.',                  5900, 35),
    (10, 'POT-TI',    'Titanium Pot 900 ml',         'Titanium pot with lid and folding handles; a canister fits inside.',  4900, 50),
    (11, 'FILTER-SQ', 'Squeeze Water Filter',        '0.1 micron hollow-fibre filter with two soft bottles.',               3900, 70),
    (12, 'LAMP-400',  'Headlamp 400 lm',             'Rechargeable headlamp with red light and lock mode.',                 4400, 80),
    (13, 'JKT-RAIN',  'Stormshell Rain Jacket',      'Three-layer waterproof-breathable shell with pit zips.',            22900, 22),
    (14, 'JKT-DOWN',  'Featherlight Down Jacket',    '850-fill hooded down jacket, packs into its own pocket.',           27900, 16),
    (15, 'BOOT-MID',  'Summit Mid Hiking Boots',     'Waterproof mid-cut boots with a grippy lugged sole.',               18900, 28),
    (16, 'SOCK-MER',  'Merino Hiking Socks (2 pk)',  'Cushioned merino wool crew socks, two pairs.',                        2400, 120),
    (17, 'POLE-CF',   'Carbon Trekking Poles',       'Pair of three-section carbon poles with cork grips.',               12900, 24),
    (18, 'MAP-GPS',   'Handheld GPS Navigator',      'Topographic maps, 16-hour battery, satellite messaging.',           34900, 10),
    (19, 'KIT-AID',   'Trail First-Aid Kit',         'Lightweight kit for two people for up to four days.',                 3200, 55),
    (20, 'CHAIR-LT',  'Ultralight Camp Chair',       'Collapsible chair, 900 g, holds 120 kg.',                             9900, 26),
    (21, 'HAM-SGL',   'Parachute Nylon Hammock',     'Single hammock with tree straps and carabiners.',                     5400, 33),
    (22, 'BOTTLE-1L', 'Insulated Bottle 1 L',        'Double-wall steel bottle: 24 h cold, 12 h hot.',                      3400, 90),
    (23, 'KNIFE-FLD', 'Folding Knife',               'Stainless 8 cm blade with liner lock and pocket clip.',               4200, 40),
    (24, 'TARP-3X3',  'Ripstop Tarp 3 x 3 m',        'Silnylon tarp with 16 tie-outs and guylines.',                        8400, 19);

INSERT INTO users (id, name, email, is_admin) VALUES
    ('alice', 'Alice Martin', 'alice@example.com', 0),
    ('bob',   'Bob Okafor',   'bob@example.com',   0),
    ('carol', 'Carol Tanaka', 'carol@example.com', 0),
    ('admin', 'Dana Admin',   'admin@example.com', 1);

INSERT INTO shipping_zones (code, name, cost_cents) VALUES
    ('local',    'Local pickup',       0),
    ('domestic', 'Domestic standard',  499),
    ('express',  'Domestic express',   1499),
    ('eu',       'Europe',             1299),
    ('world',    'Rest of the world',  2499);
