//! Reused buffers for the large chunks of files read from a stream (a compressed or remote
//! layer): a file larger than a chunk is read into one buffer after another, each handed to
//! the detector and dropped when it is matched.
//!
//! Left to the allocator, those buffers cost memory the scan no longer uses. glibc serves
//! the first ones with `mmap`, but freeing one raises its mmap threshold past the chunk
//! size, so later ones come from the heap arenas of the walker threads, between the small
//! allocations of everything else: a freed chunk there is kept (and fragmented), and the
//! process's resident set ends up tens of megabytes above the chunks in flight. Trimming
//! the heaps (`MALLOC_TRIM_THRESHOLD_`) gives that memory back but costs a page fault per
//! page of every new chunk.
//!
//! So the buffers are anonymous maps of their own, never the allocator's: a buffer whose
//! chunk is done goes back to a small pool and the next chunk is read into it (its pages
//! already resident, no fault); one beyond the pool's bound is unmapped, its memory given
//! back at once. What the scan holds is then the chunks in flight (bounded by the scan's
//! byte budget, which counts each pooled chunk at its buffer's full size) plus at most
//! [`BufferPool`]'s idle bound.

use std::fmt;
use std::ops::Deref;
use std::sync::Mutex;

use memmap2::MmapMut;

/// A pool of equally sized buffers, keeping at most `max_idle` of them while unused.
pub struct BufferPool {
    capacity: usize,
    max_idle: usize,
    idle: Mutex<Vec<MmapMut>>,
}

impl BufferPool {
    /// A pool of buffers of `capacity` bytes that keeps up to `max_idle` unused ones.
    pub const fn new(capacity: usize, max_idle: usize) -> BufferPool {
        BufferPool {
            capacity,
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The size of every buffer of this pool.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// An empty buffer: an idle one when there is one, else a new map.
    pub fn take(&'static self) -> std::io::Result<PooledBuffer> {
        let reused = self.lock().pop();
        let map = match reused {
            Some(map) => map,
            None => MmapMut::map_anon(self.capacity)?,
        };
        Ok(PooledBuffer {
            map: Some(map),
            len: 0,
            pool: self,
        })
    }

    /// Unmaps the unused buffers: for when no chunk is expected for a while (a scan's layers
    /// are walked), so the pool holds nothing while the report is built.
    pub fn release_idle(&self) {
        let idle = std::mem::take(&mut *self.lock());
        drop(idle);
    }

    /// Unused buffers kept for reuse.
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.lock().len()
    }

    fn give_back(&self, map: MmapMut) {
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(map);
            return;
        }
        drop(idle);
        // Unmapped here, outside the lock: its pages go back to the system now.
        drop(map);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<MmapMut>> {
        // The vector is only pushed and popped: a panic elsewhere cannot leave it broken.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One buffer of a [`BufferPool`], holding `len` bytes; back to its pool when dropped.
pub struct PooledBuffer {
    /// Always `Some` until dropped.
    map: Option<MmapMut>,
    len: usize,
    pool: &'static BufferPool,
}

impl PooledBuffer {
    /// The buffer's size: the memory it holds, whatever its length.
    pub fn capacity(&self) -> usize {
        self.pool.capacity
    }

    /// The whole buffer to write into, from its start; [`PooledBuffer::set_len`] then says
    /// how much of it holds the bytes. A reused buffer holds its last chunk's bytes until
    /// they are overwritten (never shown: only the first `len` are).
    pub fn writable(&mut self) -> &mut [u8] {
        self.map.as_mut().expect("buffer present until dropped")
    }

    /// Sets how many bytes from the start hold content (at most the capacity).
    pub fn set_len(&mut self, len: usize) {
        assert!(
            len <= self.capacity(),
            "{len} bytes in a buffer of {}",
            self.capacity()
        );
        self.len = len;
    }
}

impl Deref for PooledBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map.as_ref().expect("buffer present until dropped")[..self.len]
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(map) = self.map.take() {
            self.pool.give_back(map);
        }
    }
}

impl fmt::Debug for PooledBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PooledBuffer({} of {} bytes)", self.len, self.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A pool of its own for each test (tests run in parallel; the scan's pool is shared).
    fn pool(max_idle: usize) -> &'static BufferPool {
        Box::leak(Box::new(BufferPool::new(64 << 10, max_idle)))
    }

    fn filled(pool: &'static BufferPool, byte: u8, len: usize) -> PooledBuffer {
        let mut buffer = pool.take().unwrap();
        buffer.writable()[..len].fill(byte);
        buffer.set_len(len);
        buffer
    }

    #[test]
    fn a_dropped_buffer_is_handed_out_again() {
        let pool = pool(2);
        let first = filled(pool, 1, 100);
        let address = first.as_ptr();
        drop(first);
        assert_eq!(pool.idle(), 1);
        let again = pool.take().unwrap();
        assert_eq!(again.as_ptr(), address, "the same buffer, reused");
        assert!(
            again.is_empty(),
            "a reused buffer shows none of its old bytes"
        );
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn the_pool_keeps_no_more_than_its_bound() {
        let pool = pool(2);
        let buffers: Vec<_> = (0..5).map(|i| filled(pool, i, 10)).collect();
        assert_eq!(pool.idle(), 0);
        drop(buffers);
        assert_eq!(pool.idle(), 2, "the rest are unmapped");
        let again: Vec<_> = (0..3).map(|_| pool.take().unwrap()).collect();
        assert_eq!(pool.idle(), 0);
        drop(again);
        assert_eq!(pool.idle(), 2);
        pool.release_idle();
        assert_eq!(pool.idle(), 0);
        assert_eq!(pool.take().unwrap().capacity(), 64 << 10, "maps a new one");
    }

    #[test]
    fn a_buffer_still_held_is_never_handed_out() {
        let pool = pool(4);
        let held = Arc::new(filled(pool, 7, 1000));
        let other_holder = Arc::clone(&held);
        drop(held);
        // One holder left: the buffer stays out of the pool.
        assert_eq!(pool.idle(), 0);
        let mut fresh: Vec<_> = (0..4).map(|i| filled(pool, 100 + i, 64 << 10)).collect();
        assert!(fresh.iter().all(|b| b.as_ptr() != other_holder.as_ptr()));
        assert!(other_holder.iter().all(|&b| b == 7) && other_holder.len() == 1000);
        // Reused buffers are written over while the held one is read: still its bytes.
        fresh.clear();
        let reused = filled(pool, 200, 64 << 10);
        assert_ne!(reused.as_ptr(), other_holder.as_ptr());
        assert!(other_holder.iter().all(|&b| b == 7));
        assert_eq!(pool.idle(), 3);
        drop(other_holder);
        assert_eq!(pool.idle(), 4, "back once its last holder let go");
    }

    #[test]
    #[should_panic(expected = "in a buffer of")]
    fn a_length_past_the_capacity_is_refused() {
        pool(1).take().unwrap().set_len((64 << 10) + 1);
    }
}
