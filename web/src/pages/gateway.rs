//! The payment-gateway simulator: pending payments with Pay and Decline, and the auto-pay switch.

use maud::html;
use serde_json::{Map, Value, json};
use zeroapp_app::db::payments::PaymentRequest;
use zeroapp_app::payment::{self, Decline};
use zeroapp_engine::http::ApiError;

use super::layout::{self, money};
use super::{Page, Reply, Tab, View, encode};
use crate::shared::{Shared, db_failure};

/// `/gateway`: every pending payment request, the auto-pay switch.
pub async fn view(shared: &Shared) -> Result<View, ApiError> {
    let pending: Vec<PaymentRequest> = shared.app.pending_payments().await.map_err(db_failure)?;
    let auto_pay = shared.app.auto_pay();
    let table = html! {
        div #payments .table-wrap {
            @if pending.is_empty() {
                p .muted { "No payment is waiting." }
            } @else {
                table {
                    thead { tr { th { "Order" } th { "User" } th .num { "Amount" } th { "Filed" } th {} } }
                    tbody {
                        @for request in &pending {
                            @let path = encode(&request.order_id);
                            tr id=(format!("payment-{}", request.order_id)) {
                                td { a href=(Page::Order(request.order_id.clone()).path()) { (layout::short_id(&request.order_id)) } }
                                td { (request.user_id) }
                                td .num { (money(request.amount_cents)) }
                                td { (layout::when(request.created_at_ms)) }
                                td .num {
                                    div .actions {
                                        button type="button" id=(format!("pay-{}", request.order_id))
                                            data-on:click=(format!("@post('/gateway/{path}/pay')"))
                                            data-indicator:busy data-attr:disabled="$busy" { "Pay" }
                                        button .danger type="button" id=(format!("decline-{}", request.order_id))
                                            data-on:click=(format!("@post('/gateway/{path}/decline')"))
                                            data-indicator:busy data-attr:disabled="$busy" { "Decline" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let state = html! {
        span #autopay-state .badge .(if auto_pay { "paid" } else { "awaiting_payment" }) {
            "auto-pay " (if auto_pay { "on" } else { "off" })
        }
    };
    let total: i64 = pending.iter().map(|p| p.amount_cents).sum();
    let summary = html! {
        div #payments-summary .table-wrap {
            table { tbody {
                tr { th { "Waiting" } td .num { (pending.len()) } }
                tr { th { "Amount waiting" } td .num { (money(total)) } }
                tr { th { "Auto-pay" } td .num { (if auto_pay { "on" } else { "off" }) } }
            } }
        }
    };
    let input = html! {
        div .card data-signals=(json!({ "autopay": auto_pay })) {
            div .row {
                label .switch for="autopay" {
                    input #autopay type="checkbox" data-bind:autopay
                        data-on:change="$autopay = el.checked; @post('/gateway/auto-pay')";
                    "Pay every request automatically"
                }
                (state)
            }
        }
        div .card { h2 { "Pending payments" } (table) }
    };
    Ok(View {
        input,
        output: html! { div .card { h2 { "Gateway" } (summary) } },
        fragments: vec![state, table, summary],
        signals: Some(json!({ "autopay": auto_pay })),
        aside: None,
        tab: Tab::Input,
    })
}

/// `POST /gateway/auto-pay` with `autopay`: switches the simulator's auto-pay.
pub fn auto_pay(shared: &Shared, signals: &Map<String, Value>) -> Result<Reply, ApiError> {
    let on = signals
        .get("autopay")
        .and_then(Value::as_bool)
        .ok_or_else(|| ApiError::bad_request("autopay must be true or false"))?;
    shared.app.set_auto_pay(on);
    Ok(Reply::default())
}

/// `POST /gateway/{order}/pay` or `…/decline`: the PaymentGateway service's handler.
pub async fn decide(shared: &Shared, order_id: &str, action: &str) -> Result<Reply, ApiError> {
    if action == "pay" {
        let () = shared
            .client
            .call(payment::PAY, &order_id.to_owned())
            .await?;
    } else {
        let decline = Decline {
            order_id: order_id.to_owned(),
            reason: "declined on the gateway page".into(),
        };
        let () = shared.client.call(payment::DECLINE, &decline).await?;
    }
    Ok(Reply::default())
}
