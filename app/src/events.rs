//! Recording an order's progress: a status change with its history row and notifications,
//! written in one durable step and published live. Each event has a key (order and status), so
//! a step that runs again after a crash adds nothing twice.

use zeroapp_engine::prelude::*;

use crate::db::notifications;
use crate::db::orders;
use crate::status::OrderStatus;
use crate::{App, step_error};

/// Records that `order_id` reached `status`, notifies its user (and the admins if `admins`),
/// and publishes what was new.
pub(crate) async fn record(
    app: &App,
    ctx: &impl ContextBase,
    order_id: &str,
    user_id: &str,
    status: OrderStatus,
    message: String,
    admins: bool,
) -> Result<(), TerminalError> {
    let (order_id, user_id) = (order_id.to_owned(), user_id.to_owned());
    let app = app.clone();
    ctx.run(&format!("record {}", status.as_str()), move || {
        let (app, order_id, user_id, message) = (
            app.clone(),
            order_id.clone(),
            user_id.clone(),
            message.clone(),
        );
        async move {
            let key = format!("{order_id}/{}", status.as_str());
            let now = app.now_ms();
            let published = app
                .db()
                .call(move |conn| {
                    orders::record_status(conn, &order_id, status.as_str(), &message, &key, now)?;
                    let mut new = Vec::new();
                    new.extend(notifications::add(
                        conn,
                        Some(&user_id),
                        &order_id,
                        status.as_str(),
                        &message,
                        &format!("{key}/user"),
                        now,
                    )?);
                    if admins {
                        new.extend(notifications::add(
                            conn,
                            None,
                            &order_id,
                            status.as_str(),
                            &message,
                            &format!("{key}/admins"),
                            now,
                        )?);
                    }
                    Ok(new)
                })
                .await
                .map_err(step_error)?;
            for notification in &published {
                app.notifier().publish(notification);
            }
            Ok(())
        }
    })
    .await
}
