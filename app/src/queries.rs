//! What a front end asks of the domain's database, as async calls on [`App`]: the catalog,
//! orders and who may see them, notifications, pending payments, logins, sessions and API
//! tokens. Reads of committed rows only: nothing here runs a handler. The storefront's pages
//! and JSON API use these and never SQL of their own.

use crate::App;
use crate::db::DbError;
use crate::db::auth::{self, NewSession, SessionUser};
use crate::db::catalog::{self, Product, User, Zone};
use crate::db::notifications::{self, Notification};
use crate::db::orders::{self, HistoryEntry, Order};
use crate::db::payments::{self, PaymentRequest};

/// How many orders an admin's list shows (everyone's newest).
const ADMIN_ORDERS: u32 = 200;

impl App {
    /// Every product, by id.
    pub async fn products(&self) -> Result<Vec<Product>, DbError> {
        self.db().call(|c| catalog::products(c)).await
    }

    /// The product with this id, if any.
    pub async fn product(&self, id: i64) -> Result<Option<Product>, DbError> {
        self.db().call(move |c| catalog::product(c, id)).await
    }

    /// The shipping zones.
    pub async fn zones(&self) -> Result<Vec<Zone>, DbError> {
        self.db().call(|c| catalog::zones(c)).await
    }

    /// The orders `viewer` may see, newest first: their own, or an admin's everyone's newest.
    pub async fn orders_for(&self, viewer: &User) -> Result<Vec<Order>, DbError> {
        let viewer = viewer.clone();
        self.db()
            .call(move |c| {
                if viewer.is_admin {
                    orders::all_orders(c, ADMIN_ORDERS)
                } else {
                    orders::orders_of(c, &viewer.id)
                }
            })
            .await
    }

    /// The order if `viewer` may see it (its owner or an admin); `None` for an unknown order
    /// and for someone else's alike, so that other users' order ids are not revealed.
    pub async fn order_for(&self, viewer: &User, order_id: &str) -> Result<Option<Order>, DbError> {
        let id = order_id.to_owned();
        let order = self.db().call(move |c| orders::order(c, &id)).await?;
        Ok(order.filter(|order| viewer.is_admin || order.user_id == viewer.id))
    }

    /// The statuses an order went through, oldest first.
    pub async fn history(&self, order_id: &str) -> Result<Vec<HistoryEntry>, DbError> {
        let id = order_id.to_owned();
        self.db().call(move |c| orders::history(c, &id)).await
    }

    /// The newest `limit` notifications for `viewer` (an admin's: the admins').
    pub async fn notifications_for(
        &self,
        viewer: &User,
        limit: u32,
    ) -> Result<Vec<Notification>, DbError> {
        let viewer = viewer.clone();
        self.db()
            .call(move |c| {
                if viewer.is_admin {
                    notifications::for_admins(c, limit)
                } else {
                    notifications::for_user(c, &viewer.id, limit)
                }
            })
            .await
    }

    /// The payment requests waiting at the gateway, oldest first.
    pub async fn pending_payments(&self) -> Result<Vec<PaymentRequest>, DbError> {
        self.db().call(|c| payments::pending(c)).await
    }

    /// Checks a password and opens a session of `ttl_ms`; `None` on an unknown user or a
    /// wrong password.
    pub async fn log_in(
        &self,
        user: &str,
        password: &str,
        ttl_ms: i64,
    ) -> Result<Option<(User, NewSession)>, DbError> {
        let (user, password, now) = (user.to_owned(), password.to_owned(), self.now_ms());
        self.db()
            .call(move |c| {
                let Some(user) = auth::verify_password(c, &user, &password)? else {
                    return Ok(None);
                };
                let session = auth::create_session(c, &user.id, ttl_ms, now)?;
                Ok(Some((user, session)))
            })
            .await
    }

    /// The user of an unexpired session, with its CSRF token.
    pub async fn session(&self, token: &str) -> Result<Option<SessionUser>, DbError> {
        let (token, now) = (token.to_owned(), self.now_ms());
        self.db()
            .call(move |c| auth::session_user(c, &token, now))
            .await
    }

    /// Ends a session; whether there was one.
    pub async fn log_out(&self, token: &str) -> Result<bool, DbError> {
        let token = token.to_owned();
        self.db()
            .call(move |c| auth::delete_session(c, &token))
            .await
    }

    /// The user an API token belongs to, if it is valid.
    pub async fn api_token_user(&self, token: &str) -> Result<Option<User>, DbError> {
        let token = token.to_owned();
        self.db()
            .call(move |c| auth::api_token_user(c, &token))
            .await
    }

    /// Creates an API token named `name` for `user_id`; the token, shown once.
    pub async fn create_api_token(&self, user_id: &str, name: &str) -> Result<String, DbError> {
        let (user, name, now) = (user_id.to_owned(), name.to_owned(), self.now_ms());
        self.db()
            .call(move |c| auth::create_api_token(c, &user, &name, now))
            .await
    }
}
