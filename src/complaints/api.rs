//! What other domains may ask of complaints: open one in their own transaction (a visit's
//! follow-up does), with the body and the values a complaint is described by.

pub use super::handling::open;
pub use super::requests::{Description, NewComplaint, SubjectLine};
pub use super::{Category, Channel, Severity, Status};
