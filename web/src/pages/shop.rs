//! The shopper's pages: the dashboard, the catalog, the cart and checkout.

use maud::{Markup, html};
use serde_json::{Map, Value};
use zeroapp_app::db::catalog::{Product, Zone};
use zeroapp_app::db::orders::Order;
use zeroapp_app::session::{self, AddItem, BasketLine, Checkout, CheckoutSummary};
use zeroapp_app::shipping;
use zeroapp_engine::http::ApiError;

use super::layout::{self, badge, money};
use super::{Page, Reply, Tab, View};
use crate::identity::Identity;
use crate::shared::{Shared, db_failure};

/// The caller's basket, as the session object last committed it (no invocation).
pub async fn basket(shared: &Shared, who: &Identity) -> Result<Vec<BasketLine>, ApiError> {
    Ok(shared.client.basket(&who.user.id).await?)
}

fn subtotal(lines: &[BasketLine]) -> i64 {
    lines
        .iter()
        .map(|l| l.unit_price_cents.saturating_mul(i64::from(l.quantity)))
        .sum()
}

/// How many items the lines hold.
pub fn items(lines: &[BasketLine]) -> u32 {
    lines.iter().map(|l| l.quantity).sum()
}

/// The orders the caller may see (an admin's: everyone's newest).
pub async fn orders_of(shared: &Shared, who: &Identity) -> Result<Vec<Order>, ApiError> {
    shared.app.orders_for(&who.user).await.map_err(db_failure)
}

/// The basket as a table (the Output tab's cart summary), with `id`.
fn cart_table(id: &str, lines: &[BasketLine], removable: bool) -> Markup {
    html! {
        div id=(id) .table-wrap {
            @if lines.is_empty() {
                p .muted { "The cart is empty. " a href="/products" { "Browse the products" } "." }
            } @else {
                table {
                    thead { tr { th { "Product" } th .num { "Price" } th .num { "Qty" } th .num { "Line total" } @if removable { th {} } } }
                    tbody {
                        @for line in lines {
                            tr id=(format!("{id}-{}", line.product_id)) {
                                td { (line.name) " " small .muted { (line.sku) } }
                                td .num { (money(line.unit_price_cents)) }
                                td .num { (line.quantity) }
                                td .num { (money(line.unit_price_cents.saturating_mul(i64::from(line.quantity)))) }
                                @if removable {
                                    td .num {
                                        button .secondary type="button" id=(format!("remove-{}", line.product_id))
                                            data-on:click=(format!("@post('/cart/remove/{}')", line.product_id))
                                            data-indicator:busy data-attr:disabled="$busy" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                    tfoot { tr { td colspan="3" { "Subtotal" } td .num #subtotal { (money(subtotal(lines))) } @if removable { td {} } } }
                }
            }
        }
    }
}

/// `/`: what is in the cart, the orders and where they stand.
pub async fn dashboard(shared: &Shared, who: &Identity) -> Result<View, ApiError> {
    let lines = basket(shared, who).await?;
    let orders = orders_of(shared, who).await?;
    let awaiting_payment = orders
        .iter()
        .filter(|o| o.status == "awaiting_payment")
        .count();
    let open = orders
        .iter()
        .filter(|o| {
            !matches!(
                o.status.as_str(),
                "delivered" | "rejected" | "failed" | "payment_declined"
            )
        })
        .count();
    let awaiting_approval = orders
        .iter()
        .filter(|o| o.status == "awaiting_approval")
        .count();
    let summary = html! {
        div #summary .stats {
            a .card .stat href="/cart" { span .muted { "In the cart" } b #stat-cart { (items(&lines)) } span .muted { (money(subtotal(&lines))) } }
            a .card .stat href="/orders" { span .muted { "Orders" } b #stat-orders { (orders.len()) } span .muted { (open) " in progress" } }
            a .card .stat href=(if who.user.is_admin { "/gateway" } else { "/orders" }) {
                span .muted { "Awaiting payment" } b #stat-payments { (awaiting_payment) } span .muted { "at the gateway" }
            }
            @if who.user.is_admin {
                a .card .stat href="/admin" { span .muted { "To approve" } b #stat-approvals { (awaiting_approval) } span .muted { "orders" } }
            }
        }
    };
    let recent = orders_table("recent-orders", &orders[..orders.len().min(8)]);
    Ok(View {
        input: html! {
            div .card {
                h2 { "Welcome, " (who.user.name) }
                p .muted { "Pick products and check out; the payment gateway (an admin) pays or declines the order, and you follow it live." }
                div .row { a .button href="/products" { "Shop products" } a .button href="/cart" { "Go to the cart" } }
            }
            (summary)
        },
        output: html! { div .card { h2 { "Recent orders" } (recent) } },
        fragments: vec![summary, recent],
        signals: None,
        aside: None,
        tab: Tab::Input,
    })
}

/// A table of orders with their status, with `id`.
pub fn orders_table(id: &str, orders: &[Order]) -> Markup {
    html! {
        div id=(id) .table-wrap {
            @if orders.is_empty() {
                p .muted { "No orders yet." }
            } @else {
                table {
                    thead { tr { th { "Order" } th { "Placed" } th .num { "Items" } th .num { "Total" } th { "Status" } } }
                    tbody {
                        @for order in orders {
                            tr {
                                td { a href=(Page::Order(order.id.clone()).path()) { (layout::short_id(&order.id)) } }
                                td { (layout::when(order.created_at_ms)) }
                                td .num { (order.items.iter().map(|i| i.quantity).sum::<u32>()) }
                                td .num { (money(order.total_cents)) }
                                td { (badge(&order.status)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `/products`: the catalog with a quantity and "Add to cart" each; the cart in Output.
pub async fn products(shared: &Shared, who: &Identity) -> Result<View, ApiError> {
    let products: Vec<Product> = shared.app.products().await.map_err(db_failure)?;
    let lines = basket(shared, who).await?;
    let stock: Vec<Markup> = products.iter().map(stock_badge).collect();
    let cart = cart_table("cart-table", &lines, false);
    let signals: Map<String, Value> = products
        .iter()
        .map(|p| (format!("qty{}", p.id), Value::from(1)))
        .collect();
    let input = html! {
        div #catalog .grid data-signals=(Value::Object(signals)) {
            @for (product, stock) in products.iter().zip(&stock) {
                div .card .product id=(format!("product-{}", product.id)) {
                    h3 { (product.name) }
                    small .muted { (product.sku) }
                    p { (product.description) }
                    div .row { span .price { (money(product.price_cents)) } (stock) }
                    div .row .buy {
                        input .qty type="number" min="1" max="99" value="1" aria-label="Quantity"
                            id=(format!("qty-{}", product.id))
                            data-bind=(format!("qty{}", product.id));
                        button type="button" id=(format!("add-{}", product.id))
                            data-on:click=(format!("@post('/cart/add/{}')", product.id))
                            data-indicator:busy data-attr:disabled="$busy" { "Add to cart" }
                    }
                }
            }
        }
    };
    let mut fragments = stock;
    fragments.push(cart.clone());
    Ok(View {
        input,
        output: html! { div .card { h2 { "Your cart" } (cart) p { a href="/cart" { "Check out →" } } } },
        fragments,
        signals: None,
        aside: None,
        tab: Tab::Input,
    })
}

fn stock_badge(product: &Product) -> Markup {
    html! {
        span .muted id=(format!("stock-{}", product.id)) {
            @if product.stock == 0 { "out of stock" } @else { (product.stock) " in stock" }
        }
    }
}

/// `/cart`: the items, the shipping zone, the carrier, the address, the total, checkout; the
/// latest order's outcome, live.
pub async fn cart(shared: &Shared, who: &Identity) -> Result<View, ApiError> {
    let lines = basket(shared, who).await?;
    let zones: Vec<Zone> = shared.app.zones().await.map_err(db_failure)?;
    let first_zone = zones.first().map(|z| z.code.clone()).unwrap_or_default();
    let costs: Map<String, Value> = zones
        .iter()
        .map(|z| (z.code.clone(), Value::from(z.cost_cents)))
        .collect();
    let sub = subtotal(&lines);
    // The total follows the zone select in the browser; the stream re-renders it with the
    // subtotal when the cart changes.
    let total_expr = format!(
        "'$' + (({sub} + ({}[$zone] || 0)) / 100).toFixed(2)",
        Value::Object(costs.clone())
    );
    let shipping_expr = format!(
        "'$' + (({}[$zone] || 0) / 100).toFixed(2)",
        Value::Object(costs)
    );
    let items_table = cart_table("cart-items", &lines, true);
    let totals = html! {
        div #cart-totals .table-wrap {
            table {
                tbody {
                    tr { td { "Subtotal" } td .num { (money(sub)) } }
                    tr { td { "Shipping" } td .num #shipping data-text=(shipping_expr) { "—" } }
                    tr { td { b { "Total" } } td .num { b #total data-text=(total_expr) { (money(sub)) } } }
                }
            }
        }
    };
    // The button exists only with something to order: a second click after an order was
    // placed finds an empty cart (and the same order id answers the same order anyway).
    let action = html! {
        div #checkout-action {
            @if lines.is_empty() {
                p .muted { "Add products to the cart to place an order." }
            } @else {
                button #checkout type="button" data-on:click="@post('/cart/checkout')"
                    data-indicator:busy data-attr:disabled="$busy" { "Place order" }
            }
        }
    };
    let status = checkout_status(shared, who).await?;
    let summary = cart_table("cart-summary", &lines, false);
    // The order id is fixed when the cart is shown: a double click or a retried request maps
    // to the same order. An accepted checkout answers with the next one.
    let signals = serde_json::json!({
        "zone": first_zone,
        "carrier": shipping::CARRIERS[0].name,
        "address": "",
        "orderId": session::new_order_id(),
    });
    let input = html! {
        div .card { h2 { "Items" } (items_table) }
        div #checkout-form .card data-signals=(signals) {
            h2 { "Checkout" }
            label for="zone" { "Shipping zone" }
            select #zone data-bind:zone {
                @for zone in &zones {
                    option value=(zone.code) { (zone.name) " — " (money(zone.cost_cents)) }
                }
            }
            label for="carrier" { "Carrier" }
            select #carrier data-bind:carrier {
                @for carrier in shipping::CARRIERS {
                    option value=(carrier.name) { (carrier.name) " — " (carrier.description) }
                }
            }
            label for="address" { "Address" }
            input #address type="text" placeholder="1 Main Street, Springfield" data-bind:address
                maxlength=(session::MAX_ADDRESS_CHARS) style="width:100%";
            div style="margin:1rem 0" { (totals) }
            (action)
        }
    };
    Ok(View {
        input,
        output: html! { div .card { h2 { "Cart summary" } (summary) } (status) },
        fragments: vec![items_table, totals, action, summary, status],
        signals: None,
        aside: None,
        tab: Tab::Input,
    })
}

/// The caller's latest order and what became of it, as its last history row says it: placed
/// and awaiting payment, declined (the items back in the cart), or paid and on its way.
async fn checkout_status(shared: &Shared, who: &Identity) -> Result<Markup, ApiError> {
    let own = shared
        .app
        .orders_for(&who.user)
        .await
        .map_err(db_failure)?
        .into_iter()
        .find(|order| order.user_id == who.user.id);
    let last = match &own {
        Some(order) => shared
            .app
            .history(&order.id)
            .await
            .map_err(db_failure)?
            .pop(),
        None => None,
    };
    Ok(html! {
        div #checkout-status .card role="status" {
            h2 { "Your latest order" }
            @match (&own, &last) {
                (Some(order), Some(entry)) => {
                    p .row { (badge(&order.status)) " " a #latest-order href=(Page::Order(order.id.clone()).path()) { (layout::short_id(&order.id)) } }
                    p #latest-detail { (entry.detail) }
                    @if order.status == "awaiting_payment" {
                        p .muted { "The payment gateway pays or declines it; this updates by itself." }
                    }
                }
                _ => { p .muted { "No order yet." } }
            }
        }
    })
}

/// A quantity signal: a number, or a number in a string (an input's text).
fn quantity(signals: &Map<String, Value>, key: &str) -> Option<i64> {
    match signals.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `POST /cart/add/{id}`: adds `qty{id}` (or `quantity`, default 1) of the product, says so in
/// `#flash` with what the cart now holds, and adds "Item added" to the notifications.
pub async fn add(
    shared: &Shared,
    who: &Identity,
    id: &str,
    signals: &Map<String, Value>,
) -> Result<Reply, ApiError> {
    let product_id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("product id {id:?} is not a number")))?;
    let quantity = quantity(signals, &format!("qty{product_id}"))
        .or_else(|| quantity(signals, "quantity"))
        .unwrap_or(1);
    let item = AddItem {
        product_id,
        quantity,
    };
    let lines = shared
        .client
        .call(session::ADD_ITEM.key(&who.user.id), &item)
        .await?;
    let name = lines
        .iter()
        .find(|line| line.product_id == product_id)
        .map_or_else(|| format!("product {product_id}"), |line| line.name.clone());
    let count = items(&lines);
    Ok(Reply::default()
        .flash(html! {
            span #added { "Added " (quantity) " × " (name) "." }
            " Your " a #cart-link href="/cart" { "cart" } " holds " (count)
            (if count == 1 { " item" } else { " items" }) ", " (money(subtotal(&lines))) "."
        })
        .element(layout::cart_count(count))
        .note(&format!("Item added: {quantity} × {name}")))
}

/// `POST /cart/remove/{id}`.
pub async fn remove(shared: &Shared, who: &Identity, id: &str) -> Result<Reply, ApiError> {
    let product_id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("product id {id:?} is not a number")))?;
    let lines: Vec<BasketLine> = shared
        .client
        .call(session::REMOVE_ITEM.key(&who.user.id), &product_id)
        .await?;
    Ok(Reply::default().element(layout::cart_count(items(&lines))))
}

/// `POST /cart/checkout` with `orderId`, `zone`, `carrier` and `address`: the session's
/// checkout, which answers once the order is recorded and its payment requested. Accepted: the
/// latest order's status, shown by turning to Output, and a fresh `orderId` for the next order;
/// refused: the reason, and the same `orderId` for the corrected attempt.
pub async fn checkout(
    shared: &Shared,
    who: &Identity,
    signals: &Map<String, Value>,
) -> Result<Reply, ApiError> {
    let text = |key: &str| {
        signals
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let address = text("address");
    if address.is_empty() {
        return Err(ApiError::bad_request("Enter the address to ship to."));
    }
    let order_id = Some(text("orderId"))
        .filter(|id| !id.is_empty())
        .unwrap_or_else(session::new_order_id);
    let carrier = Some(text("carrier")).filter(|c| !c.is_empty());
    let checkout = Checkout {
        order_id,
        zone: text("zone"),
        address,
        carrier,
    };
    let _: CheckoutSummary = shared
        .client
        .call(session::CHECKOUT.key(&who.user.id), &checkout)
        .await?;
    Ok(Reply::default()
        .element(checkout_status(shared, who).await?)
        .element(layout::cart_count(0))
        .signals(serde_json::json!({ "orderId": session::new_order_id(), "tab": "output" })))
}
