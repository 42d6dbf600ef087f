//! A bound on the file content held in memory between the layer walkers and the detector
//! workers, heap and mapped pages alike. Walkers wait when the bound is reached, so memory
//! stays flat whatever the image (and a walk of a mapped blob cannot run further ahead of the
//! detector than the pages it drops behind it, see `layer::walk`).

use std::sync::{Condvar, Mutex};

pub struct ByteBudget {
    limit: usize,
    in_flight: Mutex<usize>,
    freed: Condvar,
}

impl ByteBudget {
    pub fn new(limit: usize) -> ByteBudget {
        ByteBudget {
            limit,
            in_flight: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits until `bytes` more fit. A request larger than the whole budget is let through
    /// when nothing else is in flight, so one big chunk cannot wait forever.
    pub fn acquire(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        while *in_flight > 0 && *in_flight + bytes > self.limit {
            in_flight = self
                .freed
                .wait(in_flight)
                .unwrap_or_else(|e| e.into_inner());
        }
        *in_flight += bytes;
    }

    pub fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        *in_flight -= bytes;
        self.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn blocks_until_released() {
        let budget = Arc::new(ByteBudget::new(10));
        budget.acquire(8);
        let other = Arc::clone(&budget);
        let waiter = std::thread::spawn(move || {
            other.acquire(5);
            other.release(5);
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished());
        budget.release(8);
        waiter.join().unwrap();
        // Larger than the budget: allowed when alone.
        budget.acquire(100);
        budget.release(100);
    }
}
