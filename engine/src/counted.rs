//! [`Counted`]: a guard that counts something in progress for as long as it exists.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Adds one to a counter when made and takes it away when dropped, however the work it counts
/// ends (returned, cancelled, panicked).
#[derive(Debug)]
pub(crate) struct Counted(Arc<AtomicUsize>);

impl Counted {
    pub(crate) fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
