//! The orders pages: the list, and one order's live progress.

use std::collections::BTreeMap;

use maud::{Markup, html};
use zeroapp_app::db::orders::{HistoryEntry, Order};
use zeroapp_app::fulfillment::{Progress, STEPS, StepState};
use zeroapp_engine::http::ApiError;

use super::layout::{self, badge, money};
use super::shop::{orders_of, orders_table};
use super::{Tab, View};
use crate::identity::Identity;
use crate::shared::{Shared, db_failure};

/// `/orders`: the caller's orders (an admin's: all), and a count by status in Output.
pub async fn list(shared: &Shared, who: &Identity) -> Result<View, ApiError> {
    let orders = orders_of(shared, who).await?;
    let table = orders_table("orders", &orders);
    let mut counts: BTreeMap<&str, (usize, i64)> = BTreeMap::new();
    for order in &orders {
        let entry = counts.entry(order.status.as_str()).or_default();
        entry.0 += 1;
        entry.1 = entry.1.saturating_add(order.total_cents);
    }
    let summary = html! {
        div #orders-summary .table-wrap {
            table {
                thead { tr { th { "Status" } th .num { "Orders" } th .num { "Value" } } }
                tbody {
                    @for (status, (count, value)) in &counts {
                        tr { td { (badge(status)) } td .num { (count) } td .num { (money(*value)) } }
                    }
                }
                tfoot { tr { td { "All" } td .num { (orders.len()) } td .num { (money(orders.iter().map(|o| o.total_cents).sum())) } } }
            }
        }
    };
    Ok(View {
        input: html! { div .card { (table) } },
        output: html! { div .card { h2 { "By status" } (summary) } },
        fragments: vec![table, summary],
        signals: None,
        aside: None,
        tab: Tab::Input,
    })
}

/// The workflow's progress, or `None` before it started (not paid yet).
async fn progress(shared: &Shared, order_id: &str) -> Option<Progress> {
    shared
        .client
        .progress(&shared.app, order_id)
        .await
        .ok()
        .flatten()
}

/// `/orders/{id}`, opening on Output: the steps, tracking number and history (Output); the
/// order as placed, with an admin's Approve and Reject while it waits for them (Input); the
/// workflow's metadata beside the notifications. Kept live by the page's stream.
pub async fn detail(shared: &Shared, who: &Identity, order_id: &str) -> Result<View, ApiError> {
    let order = shared.visible_order(&who.user, order_id).await?;
    let history: Vec<HistoryEntry> = shared.app.history(order_id).await.map_err(db_failure)?;
    let progress = progress(shared, order_id).await;
    let steps = steps_card(&order, progress.as_ref());
    let history_table = history_card(&history);
    let placed = placed_card(who, &order, progress.as_ref());
    let meta = metadata_card(&order, progress.as_ref());
    Ok(View {
        input: placed.clone(),
        output: html! { (steps) (history_table) },
        fragments: vec![steps, history_table, placed, meta.clone()],
        signals: None,
        aside: Some(meta),
        tab: Tab::Output,
    })
}

/// The right pane's "Workflow metadata": the current step, elapsed time, retries and what
/// happens next.
fn metadata_card(order: &Order, progress: Option<&Progress>) -> Markup {
    let steps = progress.map_or_else(|| early_steps(order), |p| p.steps.clone());
    let current = steps
        .iter()
        .find(|(_, state)| matches!(state, StepState::Active | StepState::Failed))
        .map_or("None: finished", |(name, _)| name.as_str());
    html! {
        div #workflow-meta .card .meta {
            h2 { "Workflow metadata" }
            dl .facts {
                dt { "Order" } dd { (layout::short_id(&order.id)) }
                dt { "Current step" } dd #meta-step { (current) }
                @if let Some(p) = progress {
                    dt { "Elapsed" } dd #meta-elapsed { (layout::elapsed(p.elapsed_ms)) }
                    dt { "Retries" } dd #meta-retries { (p.shipping_attempts.saturating_sub(1)) }
                    dt { "Next" } dd #meta-next { (p.next_action) }
                } @else {
                    dt { "Next" } dd #meta-next { (early_next(order)) }
                }
            }
        }
    }
}

/// What happens next before the workflow runs, from the order's status.
fn early_next(order: &Order) -> String {
    match order.status.as_str() {
        "awaiting_payment" => "Waiting for the payment at the gateway.".to_owned(),
        "payment_declined" => {
            "Nothing: the payment was declined and the items went back to the cart.".to_owned()
        }
        _ => "Starting fulfillment.".to_owned(),
    }
}

/// The steps before the workflow runs, from the order's status.
fn early_steps(order: &Order) -> Vec<(String, StepState)> {
    STEPS
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let state = match (i, order.status.as_str()) {
                (0, "payment_declined") => StepState::Failed,
                (0, "awaiting_payment") => StepState::Active,
                (0, _) => StepState::Done,
                _ => StepState::Pending,
            };
            ((*step).to_owned(), state)
        })
        .collect()
}

fn icon(state: StepState) -> Markup {
    layout::icon(match state {
        StepState::Done => layout::icons::DONE,
        StepState::Active => layout::icons::ACTIVE,
        StepState::Pending => layout::icons::PENDING,
        StepState::Failed => layout::icons::FAILED,
    })
}

fn state_name(state: StepState) -> &'static str {
    match state {
        StepState::Done => "done",
        StepState::Active => "active",
        StepState::Pending => "pending",
        StepState::Failed => "failed",
    }
}

fn steps_card(order: &Order, progress: Option<&Progress>) -> Markup {
    let steps = progress.map_or_else(|| early_steps(order), |p| p.steps.clone());
    let status = progress.map_or(order.status.clone(), |p| p.status.as_str().to_owned());
    let next = progress.map_or_else(|| early_next(order), |p| p.next_action.clone());
    html! {
        div #progress .card data-status=(status) {
            div .row { h2 style="margin:0" { "Progress" } span #status { (badge(&status)) } }
            ol .steps #steps {
                @for (i, (name, state)) in steps.iter().enumerate() {
                    li .(state_name(*state)) id=(format!("step-{i}")) data-state=(state_name(*state)) {
                        span { (icon(*state)) } span { (name) }
                    }
                }
            }
            dl .facts {
                dt { "Next" } dd #next-action { (next) }
                @if let Some(p) = progress {
                    dt { "Elapsed" }
                    @if p.finished_at_ms.is_none() {
                        // Counts on in the browser between the stream's updates.
                        dd #elapsed "data-on-interval__duration.1s"=(format!(
                            "el.textContent = Math.max(0, Math.round((Date.now() - {}) / 1000)) + ' s'",
                            p.started_at_ms
                        )) { (layout::elapsed(p.elapsed_ms)) }
                    } @else {
                        dd #elapsed { (layout::elapsed(p.elapsed_ms)) }
                    }
                    dt { "Carrier attempts" } dd #attempts { (p.shipping_attempts) }
                    @if let Some(carrier) = &p.carrier { dt { "Carrier" } dd #carrier { (carrier) } }
                    dt { "Tracking number" } dd #tracking { (p.tracking_number.as_deref().unwrap_or("—")) }
                    @if let Some(failure) = &p.failure { dt { "Failure" } dd #failure { (failure) } }
                }
            }
        }
    }
}

fn history_card(history: &[HistoryEntry]) -> Markup {
    html! {
        div #history .card {
            h2 { "History" }
            @if history.is_empty() { p .muted { "Nothing yet." } } @else {
                div .table-wrap { table {
                    thead { tr { th { "When" } th { "Status" } th { "Detail" } } }
                    tbody {
                        @for entry in history {
                            tr { td { (layout::when(entry.at_ms)) } td { (badge(&entry.status)) } td { (entry.detail) } }
                        }
                    }
                } }
            }
        }
    }
}

/// The Input tab: the order as placed (lines, totals, where to) and, for an admin while it
/// waits for a decision, Approve and Reject.
fn placed_card(who: &Identity, order: &Order, progress: Option<&Progress>) -> Markup {
    let status = progress.map_or(order.status.as_str(), |p| p.status.as_str());
    let path = super::encode(&order.id);
    html! {
        div #order-placed {
            @if who.user.is_admin && status == "awaiting_approval" {
                div .card #decision {
                    h2 { "Decision" }
                    div .actions style="justify-content:flex-start" {
                        button type="button" id="approve"
                            data-on:click=(format!("@post('/admin/{path}/approve')"))
                            data-indicator:busy data-attr:disabled="$busy" { "Approve" }
                        button .danger type="button" id="reject"
                            data-on:click=(format!("@post('/admin/{path}/reject')"))
                            data-indicator:busy data-attr:disabled="$busy" { "Reject" }
                    }
                }
            }
            div .card .table-wrap {
                h2 { "Items" }
                table {
                    thead { tr { th { "Product" } th .num { "Price" } th .num { "Qty" } th .num { "Line total" } } }
                    tbody {
                        @for item in &order.items {
                            tr { td { (item.name) } td .num { (money(item.unit_price_cents)) } td .num { (item.quantity) }
                                 td .num { (money(item.line_total_cents().unwrap_or(0))) } }
                        }
                    }
                    tfoot {
                        tr { td colspan="3" { "Subtotal" } td .num { (money(order.subtotal_cents)) } }
                        tr { td colspan="3" { "Shipping" } td .num { (money(order.shipping_cents)) } }
                        tr { td colspan="3" { "Total" } td .num { (money(order.total_cents)) } }
                    }
                }
                dl .facts {
                    dt { "Order" } dd { code { (order.id) } }
                    dt { "Placed" } dd { (layout::time(order.created_at_ms)) }
                    dt { "Ship to" } dd { (order.address) " (" (order.zone) ")" }
                    dt { "Carrier" } dd { (order.carrier) }
                    dt { "Status" } dd { (badge(status)) }
                }
            }
        }
    }
}
