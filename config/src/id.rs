//! Identifiers of agents, services, probes, calendars, agreements and maintenance:
//! `[a-z0-9][a-z0-9_-]{0,62}`, checked once so later code can trust them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A validated identifier.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(String);

impl Id {
    pub fn new(text: &str) -> Result<Id, String> {
        let bytes = text.as_bytes();
        let ok_first = bytes.first().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let ok_rest = bytes[1.min(bytes.len())..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
        if text.is_empty() {
            Err("is empty; ids match [a-z0-9][a-z0-9_-]{0,62}".into())
        } else if bytes.len() > 63 {
            Err(format!("\"{text}\" is longer than 63 characters"))
        } else if !ok_first || !ok_rest {
            Err(format!(
                "\"{text}\" is not a valid id; use lowercase letters, digits, '_' and '-', starting with a letter or digit"
            ))
        } else {
            Ok(Id(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Id {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Id::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "0", "payments-api", "lon_1", &"a".repeat(63)] {
            assert!(Id::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in ["", "-a", "_a", "Payments", "a b", "a.b", "ü", &"a".repeat(64)] {
            assert!(Id::new(bad).is_err(), "{bad}");
        }
    }
}
