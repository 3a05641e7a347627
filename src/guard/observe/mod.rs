//! What operators see, and what the subsystems report into: the [`audit`] of every decision,
//! the [`metrics`] (feature `metrics`) and the [`readiness`] of the key sources and stores.
//!
//! A floor below the request path: nothing here imports the pipeline, the layer or its
//! configuration; they hand this floor what it reports (see DESIGN.md, "Floors").

pub mod audit;

#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(not(feature = "metrics"))]
pub(crate) mod metrics;

pub mod readiness;

pub(crate) mod interaction_id;
