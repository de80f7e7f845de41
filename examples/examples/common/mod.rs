//! What the examples share: a log that prints each line and keeps it for the tests.

use std::sync::{Arc, Mutex};

/// Prints lines as they happen and keeps them, so each example's test can check the story.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Prints `line` and records it.
    pub fn say(&self, line: impl Into<String>) {
        let line = line.into();
        println!("{line}");
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    /// Every line said so far.
    #[allow(dead_code)] // used by the tests only
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
