//! Notifications for a user, or for the admins (`user_id` NULL). Each carries a unique event
//! key, so a step replayed after a crash never notifies twice.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::DbError;
use super::sql::{FromRow, count, from_row, query_one, select, write};

/// A notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Its id; ids grow with time, so a reader can ask for those after the last it saw.
    pub id: i64,
    /// The user it is for, or `None` for the admins.
    pub user_id: Option<String>,
    /// The order it is about.
    pub order_id: String,
    /// What kind of event, such as `"payment_declined"` or `"shipped"`.
    pub kind: String,
    /// The text shown.
    pub message: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Whether it was marked read.
    pub read: bool,
    /// The key that made it be added once.
    pub event_key: String,
}

from_row!(
    Notification,
    "notifications",
    [id, user_id, order_id, kind, message, at_ms, read, event_key]
);

/// Adds a notification for `user` (`None`: for the admins) and returns it, or returns `None`,
/// changing nothing, if a notification with this `event_key` exists already.
pub fn add(
    conn: &Connection,
    user: Option<&str>,
    order_id: &str,
    kind: &str,
    message: &str,
    event_key: &str,
    now_ms: i64,
) -> Result<Option<Notification>, DbError> {
    let sql = format!(
        "INSERT INTO notifications (user_id, order_id, kind, message, at_ms, event_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (event_key) DO NOTHING
         RETURNING {}",
        Notification::COLUMNS
    );
    query_one(
        conn,
        &sql,
        (user, order_id, kind, message, now_ms, event_key),
    )
}

/// The user's newest `limit` notifications (not the admins'), newest first.
pub fn for_user(conn: &Connection, user: &str, limit: u32) -> Result<Vec<Notification>, DbError> {
    select(
        conn,
        "WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
        (user, limit),
    )
}

/// The admins' newest `limit` notifications, newest first.
pub fn for_admins(conn: &Connection, limit: u32) -> Result<Vec<Notification>, DbError> {
    select(
        conn,
        "WHERE user_id IS NULL ORDER BY id DESC LIMIT ?1",
        [limit],
    )
}

/// Every notification (users' and admins') with an id above `after_id`, oldest first, at most
/// `limit`: what a live feed missed since the last id it saw.
pub fn since(conn: &Connection, after_id: i64, limit: u32) -> Result<Vec<Notification>, DbError> {
    select(
        conn,
        "WHERE id > ?1 ORDER BY id LIMIT ?2",
        (after_id, limit),
    )
}

/// Marks a notification read. True if it was unread; false if it was read already or does not
/// exist.
pub fn mark_read(conn: &Connection, id: i64) -> Result<bool, DbError> {
    Ok(write(
        conn,
        "UPDATE notifications SET read = 1 WHERE id = ?1 AND read = 0",
        [id],
    )? > 0)
}

/// How many of the user's notifications (`None`: the admins') are unread.
pub fn unread_count(conn: &Connection, user: Option<&str>) -> Result<i64, DbError> {
    count(
        conn,
        "SELECT COUNT(*) FROM notifications WHERE user_id IS ?1 AND read = 0",
        [user],
    )
}
