//! Processes a test binary keeps for all its tests (a server in a `static`, which Rust never
//! drops) stopped, and their directories removed, when the binary exits: otherwise each run
//! of the suite would leave them behind.

use std::path::PathBuf;
use std::sync::{Mutex, Once};

static LEFT: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> i32;
    fn kill(pid: i32, signal: i32) -> i32;
}

const SIGKILL: i32 = 9;

/// Kills `pid` and removes `dir` when this process exits (normally, or by
/// `std::process::exit`, as the test harness does when a test failed).
pub fn stop_at_exit(pid: u32, dir: PathBuf) {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: `stop_left` is an `extern "C" fn()` that lives as long as the program.
        let _ = unsafe { atexit(stop_left) };
    });
    LEFT.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((pid, dir));
}

extern "C" fn stop_left() {
    let left = std::mem::take(&mut *LEFT.lock().unwrap_or_else(|e| e.into_inner()));
    for (pid, dir) in left {
        // SAFETY: kill has no memory preconditions; the pid is a child this process started.
        unsafe { kill(pid as i32, SIGKILL) };
        let _ = std::fs::remove_dir_all(dir);
    }
}
