//! The Xen-API model: the single source of truth of xencim.
//!
//! One registry holds every object (running or halted VMs alike), persisted in SQLite, with
//! the xapi power-state machine, tasks and an event stream. Both front doors (this crate's
//! XML-RPC/JSON-RPC server and the CIM providers) act through it.

pub mod accessors;
pub mod bootstrap;
pub mod coverage;
pub mod datamodel;
pub mod db;
pub mod devices;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod guest_events;
pub mod housekeeping;
pub mod lifecycle;
pub mod model;
pub mod rbac;
pub mod rpc;
pub mod sessions;
pub mod store;
pub mod store_identity;
pub mod tasks;
pub mod value;
pub mod vm_ops;
