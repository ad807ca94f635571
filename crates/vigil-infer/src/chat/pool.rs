//! A small persistent pool of worker threads for the fast llama path, and the writer through
//! which they fill disjoint column ranges of one output matrix.
//!
//! A forward pass hands the pool a few hundred short jobs (one per matrix product), so
//! starting threads or queueing closures per job would cost more than the work. Workers here
//! live as long as the model; between jobs they spin briefly on an epoch counter (the next
//! product usually follows within microseconds), then sleep on a condition variable, so an
//! idle model burns no CPU. The calling thread takes the first share of every job.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(300);

type Job<'a> = &'a (dyn Fn(usize) + Sync);

struct Shared {
    /// Bumped for every job; workers run each epoch once.
    epoch: AtomicUsize,
    /// Points at the current job's `Job` reference, on the caller's stack.
    job: AtomicPtr<()>,
    /// Workers still running the current job.
    pending: AtomicUsize,
    /// Workers asleep on `wake`.
    sleepers: AtomicUsize,
    /// A worker's job panicked.
    panicked: AtomicBool,
    stop: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// Worker threads that run a job's shares in parallel with the caller.
pub(crate) struct WorkerPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("threads", &self.threads())
            .finish()
    }
}

impl WorkerPool {
    /// A pool running jobs on `threads` threads, the caller's included.
    pub(crate) fn new(threads: usize) -> std::io::Result<WorkerPool> {
        let shared = Arc::new(Shared {
            epoch: AtomicUsize::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            pending: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut pool = WorkerPool {
            shared,
            workers: Vec::new(),
        };
        for index in 1..threads.max(1) {
            let shared = pool.shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("vigil-llama-{index}"))
                .spawn(move || work(&shared, index))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// Threads that run each job, the caller's included.
    pub(crate) fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `job(i)` for every thread index `i` (0 on the caller), returning when all are done.
    pub(crate) fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() {
            job(0);
            return;
        }
        let shared = &*self.shared;
        let job_ref: Job<'_> = job;
        shared
            .job
            .store(&job_ref as *const Job<'_> as *mut (), Ordering::Release);
        shared.pending.store(self.workers.len(), Ordering::Release);
        shared.epoch.fetch_add(1, Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.wake.notify_all();
        }

        // Workers read `job_ref` until `pending` is zero: wait for that even if our share
        // panics, so the reference never outlives this frame while in use.
        let wait = WaitForWorkers(shared);
        job(0);
        drop(wait);
        if shared.panicked.swap(false, Ordering::AcqRel) {
            panic!("a fast llama worker thread panicked");
        }
    }

    /// Splits `width` columns of `out` (`tokens` rows of `width`) into one range per thread,
    /// in whole units of `granule` columns, and runs `job(thread, columns, writer)` on each.
    pub(crate) fn run_columns(
        &self,
        out: &mut [f32],
        tokens: usize,
        width: usize,
        granule: usize,
        job: &(dyn Fn(usize, Range<usize>, &mut ColumnWriter<'_>) + Sync),
    ) {
        assert!(out.len() >= tokens * width && granule > 0);
        let units = width.div_ceil(granule);
        let threads = self.threads();
        let base = SendPtr(out.as_mut_ptr());
        let shares = move |thread: usize| {
            let start = (units * thread / threads * granule).min(width);
            let end = (units * (thread + 1) / threads * granule).min(width);
            start..end
        };
        self.run(&|thread| {
            let columns = shares(thread);
            if columns.is_empty() {
                return;
            }
            let mut writer = ColumnWriter {
                base: base.get(),
                tokens,
                width,
                columns: columns.clone(),
                _out: PhantomData,
            };
            job(thread, columns, &mut writer);
        });
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        {
            let _guard = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

struct WaitForWorkers<'a>(&'a Shared);

impl Drop for WaitForWorkers<'_> {
    fn drop(&mut self) {
        let mut spins = 0u32;
        while self.0.pending.load(Ordering::Acquire) != 0 {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

fn work(shared: &Shared, index: usize) {
    let mut seen = 0usize;
    loop {
        seen = wait_for_epoch(shared, seen);
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let pointer = shared.job.load(Ordering::Acquire) as *const Job<'_>;
        // SAFETY: `run` stored a pointer to a live `Job` before bumping the epoch, and keeps
        // it alive until `pending` reaches zero, which this worker has not signalled yet.
        let job = unsafe { *pointer };
        if catch_unwind(AssertUnwindSafe(|| job(index))).is_err() {
            shared.panicked.store(true, Ordering::Release);
        }
        shared.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Spins, then sleeps, until the epoch moves past `seen`; returns the new epoch.
fn wait_for_epoch(shared: &Shared, seen: usize) -> usize {
    let started = Instant::now();
    let mut spins = 0u32;
    loop {
        let epoch = shared.epoch.load(Ordering::Acquire);
        if epoch != seen {
            return epoch;
        }
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(256) || started.elapsed() < SPIN {
            std::hint::spin_loop();
            continue;
        }
        let mut guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
        shared.sleepers.fetch_add(1, Ordering::SeqCst);
        while shared.epoch.load(Ordering::SeqCst) == seen {
            guard = shared.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        shared.sleepers.fetch_sub(1, Ordering::SeqCst);
        return shared.epoch.load(Ordering::Acquire);
    }
}

/// Write access to one thread's columns of a `tokens x width` row-major matrix.
pub(crate) struct ColumnWriter<'a> {
    base: *mut f32,
    tokens: usize,
    width: usize,
    columns: Range<usize>,
    _out: PhantomData<&'a mut [f32]>,
}

impl ColumnWriter<'_> {
    /// Sets row `token`, column `column` (which must be in this thread's range).
    #[inline]
    pub(crate) fn set(&mut self, token: usize, column: usize, value: f32) {
        assert!(token < self.tokens && self.columns.contains(&column));
        // SAFETY: in bounds (checked above, and `run_columns` checked the slice's length);
        // no other thread writes this column range, and the slice is borrowed mutably for the
        // whole job.
        unsafe { *self.base.add(token * self.width + column) = value }
    }

    /// Writes `values` into row `token` from column `start` on (all in this thread's range).
    #[inline]
    pub(crate) fn set_run(&mut self, token: usize, start: usize, values: &[f32]) {
        let end = start + values.len();
        assert!(token < self.tokens && start >= self.columns.start && end <= self.columns.end);
        // SAFETY: as in `set`, for the whole run.
        unsafe {
            std::ptr::copy_nonoverlapping(
                values.as_ptr(),
                self.base.add(token * self.width + start),
                values.len(),
            );
        }
    }
}

/// The base pointer shared by the workers of one `run_columns` call.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);

impl SendPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

// SAFETY: the pointer is only written through `ColumnWriter`s, each confined to its own
// column range, while `run_columns` holds the slice's mutable borrow.
unsafe impl Sync for SendPtr {}
// SAFETY: as above.
unsafe impl Send for SendPtr {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_runs_every_job_once() {
        let pool = WorkerPool::new(3).unwrap();
        let count = AtomicUsize::new(0);
        for _ in 0..1000 {
            pool.run(&|_| {
                count.fetch_add(1, Ordering::Relaxed);
            });
        }
        assert_eq!(count.load(Ordering::Relaxed), 3000);
    }

    #[test]
    fn columns_are_split_without_gaps_or_overlap() {
        let pool = WorkerPool::new(2).unwrap();
        let mut out = vec![0f32; 3 * 10];
        pool.run_columns(&mut out, 3, 10, 3, &|_, columns, writer| {
            for t in 0..3 {
                for c in columns.clone() {
                    writer.set(t, c, (t * 10 + c) as f32 + 1.0);
                }
            }
        });
        let expected: Vec<f32> = (0..30).map(|i| i as f32 + 1.0).collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn idle_workers_fall_asleep_and_wake_up() {
        let pool = WorkerPool::new(2).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(pool.shared.sleepers.load(Ordering::SeqCst), 1);
        let count = AtomicUsize::new(0);
        pool.run(&|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }
}
