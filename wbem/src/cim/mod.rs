//! The CIM object model (DSP0004): types, values, qualifiers, classes, instances, object paths and
//! status codes. Shared by the MOF compiler, the repository, the CIM-XML codec and the providers.
//!
//! CIM names (classes, properties, qualifiers, keys, parameters, methods) are case-insensitive:
//! every lookup here ignores case and every value keeps the spelling it was given for output.

mod class;
mod datetime;
mod instance;
mod method;
mod name;
mod path;
mod property;
mod qualifier;
mod status;
mod types;
mod value;

pub use class::Class;
pub use datetime::{CimDateTime, DateTimeError, Interval, Timestamp};
pub use instance::Instance;
pub use method::{Method, Parameter};
pub use name::{compare_names, find_by_name, fold_name, is_valid_name, is_valid_namespace, names_equal};
pub use path::{KeyValue, ObjectPath};
pub use property::Property;
pub use qualifier::{find_qualifier, Flavors, Qualifier, QualifierDecl, Scopes};
pub use status::{CimError, CimStatus};
pub use types::{CimType, EmbeddedKind};
pub use value::{CimArray, CimValue, ValueError};
