//! The shopper's pages: the dashboard, the catalog, the cart and checkout.

use maud::{Markup, html};
use serde_json::{Map, Value};
use zeroapp_app::db::catalog::{self, Product, Zone};
use zeroapp_app::db::orders::{self, Order};
use zeroapp_app::db::payments;
use zeroapp_app::session::{self, AddItem, BasketLine};
use zeroapp_engine::http::ApiError;

use super::layout::{self, badge, money};
use super::{Page, View};
use crate::api;
use crate::identity::Identity;
use crate::server::Shared;

/// The caller's basket.
async fn basket(shared: &Shared, who: &Identity) -> Result<Vec<BasketLine>, ApiError> {
    Ok(shared.client.basket(&who.user.id).await?)
}

fn subtotal(lines: &[BasketLine]) -> i64 {
    lines
        .iter()
        .map(|l| l.unit_price_cents.saturating_mul(i64::from(l.quantity)))
        .sum()
}

/// The caller's orders (an admin's: everyone's newest).
pub async fn orders_of(shared: &Shared, who: &Identity) -> Result<Vec<Order>, ApiError> {
    let user = who.user.clone();
    shared
        .query(move |c| {
            if user.is_admin {
                orders::all_orders(c, 200)
            } else {
                orders::orders_of(c, &user.id)
            }
        })
        .await
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
    let pending = shared.query(|c| payments::pending(c)).await?;
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
    let items: u32 = lines.iter().map(|l| l.quantity).sum();
    let summary = html! {
        div #summary .stats {
            a .card .stat href="/cart" { span .muted { "In the cart" } b #stat-cart { (items) } span .muted { (money(subtotal(&lines))) } }
            a .card .stat href="/orders" { span .muted { "Orders" } b #stat-orders { (orders.len()) } span .muted { (open) " in progress" } }
            a .card .stat href="/gateway" { span .muted { "Payments waiting" } b #stat-payments { (pending.len()) } span .muted { "at the gateway" } }
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
                p .muted { "Pick products, check out, pay on the gateway page and follow each order live." }
                div .row { a .button href="/products" { "Shop products" } a .button href="/cart" { "Go to the cart" } }
            }
            (summary)
        },
        output: html! { div .card { h2 { "Recent orders" } (recent) } },
        fragments: vec![summary, recent],
        signals: None,
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
                                td { a href=(Page::Order(order.id.clone()).path()) { (order.id) } }
                                td { (layout::time(order.created_at_ms)) }
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
    let products: Vec<Product> = shared.query(|c| catalog::products(c)).await?;
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
    })
}

fn stock_badge(product: &Product) -> Markup {
    html! {
        span .muted id=(format!("stock-{}", product.id)) {
            @if product.stock == 0 { "out of stock" } @else { (product.stock) " in stock" }
        }
    }
}

/// `/cart`: the items, the shipping zone, the address, the total, checkout.
pub async fn cart(shared: &Shared, who: &Identity) -> Result<View, ApiError> {
    let lines = basket(shared, who).await?;
    let zones: Vec<Zone> = shared.query(|c| catalog::zones(c)).await?;
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
    let items = cart_table("cart-items", &lines, true);
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
    let summary = cart_table("cart-summary", &lines, false);
    let signals = serde_json::json!({ "zone": first_zone, "address": "" });
    let input = html! {
        div .card { h2 { "Items" } (items) }
        div #checkout-form .card data-signals=(signals) {
            h2 { "Checkout" }
            label for="zone" { "Shipping zone" }
            select #zone data-bind:zone {
                @for zone in &zones {
                    option value=(zone.code) { (zone.name) " — " (money(zone.cost_cents)) }
                }
            }
            label for="address" { "Address" }
            input #address type="text" placeholder="1 Main Street, Springfield" data-bind:address style="width:100%";
            div style="margin:1rem 0" { (totals) }
            button #checkout type="button" data-on:click="@post('/cart/checkout')"
                data-indicator:busy data-attr:disabled="$busy" { "Place order" }
        }
    };
    Ok(View {
        input,
        output: html! { div .card { h2 { "Cart summary" } (summary) } },
        fragments: vec![items, totals, summary],
        signals: None,
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

/// `POST /cart/add/{id}`: adds `qty{id}` (or `quantity`, default 1) of the product, and says so
/// in `#flash`, with what the cart now holds (the cart itself is on the hidden Output tab).
pub async fn add(
    shared: &Shared,
    who: &Identity,
    id: &str,
    signals: &Map<String, Value>,
) -> Result<Option<Markup>, ApiError> {
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
    let items: u32 = lines.iter().map(|line| line.quantity).sum();
    Ok(Some(layout::flash(html! {
        span #added { "Added " (quantity) " × " (name) "." }
        " Your " a #cart-link href="/cart" { "cart" } " holds " (items)
        (if items == 1 { " item" } else { " items" }) ", " (money(subtotal(&lines))) "."
    })))
}

/// `POST /cart/remove/{id}`.
pub async fn remove(shared: &Shared, who: &Identity, id: &str) -> Result<Option<Markup>, ApiError> {
    let product_id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("product id {id:?} is not a number")))?;
    let _: Vec<BasketLine> = shared
        .client
        .call(session::REMOVE_ITEM.key(&who.user.id), &product_id)
        .await?;
    Ok(None)
}

/// `POST /cart/checkout` with `zone` and `address`: the API's checkout; a message with a link
/// to the new order.
pub async fn checkout(
    shared: &Shared,
    who: &Identity,
    signals: &Map<String, Value>,
) -> Result<Option<Markup>, ApiError> {
    let text = |key: &str| {
        signals
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let (zone, address) = (text("zone"), text("address"));
    if address.is_empty() {
        return Err(ApiError::bad_request("Enter the address to ship to."));
    }
    let (order_id, _) = api::start_checkout(shared, who, None, zone, address).await?;
    Ok(Some(layout::flash(html! {
        "Order " a #new-order href=(Page::Order(order_id.clone()).path()) { (order_id) }
        " placed. Pay it on the " a href="/gateway" { "payment gateway" } ", then follow it live."
    })))
}
