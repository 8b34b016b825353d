//! The validation error every layer reports: which field, and what is wrong.

use std::fmt;

/// A rule of docs/api.md that an input broke. Maps to `400 invalid_argument`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// The offending field or parameter, as a path into the input
    /// (`title`, `conditions.ageStart`, `conditions[1].country`); `None` when
    /// the input as a whole is wrong (not JSON, not an object).
    pub field: Option<String>,
    /// A sentence for a human, naming the rule.
    pub message: String,
}

impl ValidationError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn whole(message: impl Into<String>) -> Self {
        ValidationError {
            field: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ValidationError {}
