#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod adapter;
mod fallback;
mod task;

pub use adapter::{ManualAdapter, ManualConfig};
pub use fallback::FallbackToManual;
pub use task::{
    MemoryTaskStore, Resolution, Task, TaskState, TaskStore, next_state, task_id, unknown_task,
};

/// Connector kind of this crate, as reported in [`iga_adapter::AdapterInfo`] and errors.
pub const KIND: &str = "manual";
