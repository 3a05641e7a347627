//! [`AbortOnDrop`]: a background task that ends with its owner (feature `redis`).

/// Aborts the task when dropped: held by the value the task works for (a store's
/// subscription, a Sentinel watch), so that the task never outlives it.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
