//! The admin page: orders awaiting approval with Approve and Reject, and all orders.

use maud::html;
use zeroapp_app::fulfillment;
use zeroapp_engine::http::ApiError;

use super::layout::{self, money};
use super::shop::{orders_of, orders_table};
use super::{Page, Reply, Tab, View, encode};
use crate::identity::Identity;
use crate::shared::Shared;

/// `/admin` (admins only; the caller checks).
pub async fn view(shared: &Shared, who: &Identity) -> Result<View, ApiError> {
    who.require_admin()?;
    let orders = orders_of(shared, who).await?;
    let waiting: Vec<_> = orders
        .iter()
        .filter(|o| o.status == "awaiting_approval")
        .collect();
    let approvals = html! {
        div #approvals .table-wrap {
            @if waiting.is_empty() {
                p .muted { "No order is waiting for a decision." }
            } @else {
                table {
                    thead { tr { th { "Order" } th { "User" } th .num { "Total" } th { "Placed" } th {} } }
                    tbody {
                        @for order in &waiting {
                            @let path = encode(&order.id);
                            tr id=(format!("approval-{}", order.id)) {
                                td { a href=(Page::Order(order.id.clone()).path()) { (layout::short_id(&order.id)) } }
                                td { (order.user_id) }
                                td .num { (money(order.total_cents)) }
                                td { (layout::when(order.created_at_ms)) }
                                td .num {
                                    div .actions {
                                        button type="button" id=(format!("approve-{}", order.id))
                                            data-on:click=(format!("@post('/admin/{path}/approve')"))
                                            data-indicator:busy data-attr:disabled="$busy" { "Approve" }
                                        button .danger type="button" id=(format!("reject-{}", order.id))
                                            data-on:click=(format!("@post('/admin/{path}/reject')"))
                                            data-indicator:busy data-attr:disabled="$busy" { "Reject" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let all = orders_table("all-orders", &orders);
    Ok(View {
        input: html! { div .card { h2 { "Awaiting approval" } (approvals) } },
        output: html! { div .card { h2 { "All orders" } (all) } },
        fragments: vec![approvals, all],
        signals: None,
        aside: None,
        tab: Tab::Input,
    })
}

/// `POST /admin/{order}/approve` or `…/reject`: the workflow's `approve` with the decision.
pub async fn decide(
    shared: &Shared,
    who: &Identity,
    order_id: &str,
    approved: bool,
) -> Result<Reply, ApiError> {
    who.require_admin()?;
    let () = shared
        .client
        .call(fulfillment::APPROVE.key(order_id), &approved)
        .await?;
    Ok(Reply::default())
}
