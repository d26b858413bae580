//! The job queue (apalis): jobs carry touch ids only, never loaded records, so a job
//! queued before an edit or an erasure never sends stale data.

mod job;
pub mod worker;

pub use job::{DispatchJob, JobError};

/// Set explicitly: apalis defaults the queue name to the Rust type name, and renaming a
/// type would silently orphan every queued job.
pub const DISPATCH_QUEUE: &str = "rapport:dispatch";
