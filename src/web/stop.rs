//! Stopping the server cleanly: its background threads (hot folder, daily backup, admin
//! socket) wait on this instead of sleeping, so on Ctrl-C or SIGTERM they end, the last
//! reference to the store goes, and the store closes properly (it carries the backup's change
//! set over to the next start; see `store::changes`).

use std::sync::{Condvar, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Stop {
    stopping: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Asks every waiter to stop.
    pub fn stop(&self) {
        *self.stopping.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `d`; true when the server is stopping.
    pub fn wait(&self, d: Duration) -> bool {
        let guard = self.stopping.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self.wake.wait_timeout_while(guard, d, |s| !*s).unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_wakes_when_stopped() {
        let s = std::sync::Arc::new(Stop::default());
        assert!(!s.wait(Duration::from_millis(5)));
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.wait(Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(20));
        s.stop();
        assert!(t.join().unwrap());
        assert!(s.is_stopping());
    }
}
