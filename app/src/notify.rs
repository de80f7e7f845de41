//! Live notifications: what the domain persisted, pushed to in-process subscribers (one stream
//! per user, one for admins) that the web layer turns into server-sent events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

use crate::db::notifications::Notification;

/// How many notifications a slow subscriber may fall behind before it misses some (it then
/// re-reads the list from SQLite).
const BUFFER: usize = 256;

/// Fans notifications out to subscribers. Cheap to clone.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    users: Mutex<HashMap<String, broadcast::Sender<Notification>>>,
    admins: Mutex<Option<broadcast::Sender<Notification>>>,
}

impl Notifier {
    /// Notifications for `user` from now on.
    pub fn subscribe_user(&self, user: &str) -> broadcast::Receiver<Notification> {
        let mut users = self
            .inner
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        users
            .entry(user.to_owned())
            .or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe()
    }

    /// Notifications for admins from now on.
    pub fn subscribe_admins(&self) -> broadcast::Receiver<Notification> {
        let mut admins = self
            .inner
            .admins
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        admins
            .get_or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe()
    }

    /// Delivers a notification that was just persisted to whoever listens.
    pub fn publish(&self, notification: &Notification) {
        let sender = match &notification.user_id {
            Some(user) => {
                let mut users = self
                    .inner
                    .users
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                users.retain(|_, sender| sender.receiver_count() > 0);
                users.get(user).cloned()
            }
            None => self
                .inner
                .admins
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        };
        if let Some(sender) = sender {
            // No receiver is fine: nobody is looking right now.
            let _ = sender.send(notification.clone());
        }
    }
}
