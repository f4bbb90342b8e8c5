//! The raw stage of config parsing: walks the spanned TOML tree, checks every key
//! against the schema and every value's type, and records each problem with its
//! position instead of stopping at the first (so one run reports them all).

use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::Diagnostics;
use crate::time::parse_instant;
use crate::units::{format_duration, parse_duration};

/// A value with the byte offset it was read from, kept until cross-reference checks are done.
#[derive(Clone, Debug)]
pub(crate) struct At<T> {
    pub value: T,
    pub pos: usize,
}

pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// A table whose keys have been checked against the schema.
pub(crate) struct Fields<'a, 'i> {
    pub path: String,
    pub pos: usize,
    table: &'a DeTable<'i>,
}

impl<'a, 'i> Fields<'a, 'i> {
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.table.iter().find(|(k, _)| k.get_ref().as_ref() == key).map(|(_, v)| v)
    }

    pub(crate) fn key_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Every `(key, value)` in the table, for tables whose keys are data (labels, headers).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'a str, usize, &'a Value<'i>)> {
        self.table.iter().map(|(k, v)| (k.get_ref().as_ref(), k.span().start, v))
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare { key.to_string() } else { format!("{key:?}") };
    if path.is_empty() { key } else { format!("{path}.{key}") }
}

pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Reads typed values out of the tree, reporting wrong types and unknown keys.
pub(crate) struct Reader<'s> {
    pub diags: Diagnostics<'s>,
}

impl<'s> Reader<'s> {
    pub(crate) fn error(&mut self, pos: usize, path: impl Into<String>, message: impl Into<String>) {
        self.diags.error(pos, path, message);
    }

    /// Opens a table and reports any key not in `known`.
    pub(crate) fn fields<'a, 'i>(
        &mut self,
        value: &'a Value<'i>,
        path: &str,
        known: &[&str],
    ) -> Option<Fields<'a, 'i>> {
        let DeValue::Table(table) = value.get_ref() else {
            self.type_error(value, path, "a table");
            return None;
        };
        let fields = Fields { path: path.to_string(), pos: value.span().start, table };
        for (key, _) in table.iter() {
            let name: &str = key.get_ref().as_ref();
            if !known.contains(&name) {
                let hint = closest(name, known)
                    .map(|k| format!("; did you mean \"{k}\"?"))
                    .unwrap_or_else(|| format!("; known keys: {}", known.join(", ")));
                self.error(key.span().start, join(path, name), format!("unknown key{hint}"));
            }
        }
        Some(fields)
    }

    /// A table whose keys are free-form (labels, headers, calendars by name).
    pub(crate) fn open_map<'a, 'i>(&mut self, value: &'a Value<'i>, path: &str) -> Option<Fields<'a, 'i>> {
        let DeValue::Table(table) = value.get_ref() else {
            self.type_error(value, path, "a table");
            return None;
        };
        Some(Fields { path: path.to_string(), pos: value.span().start, table })
    }

    pub(crate) fn type_error(&mut self, value: &Value<'_>, path: &str, wanted: &str) {
        let found = describe(value.get_ref());
        self.error(value.span().start, path, format!("expected {wanted}, found {found}"));
    }

    pub(crate) fn required<'a, 'i>(&mut self, f: &Fields<'a, 'i>, key: &str) -> Option<&'a Value<'i>> {
        let v = f.get(key);
        if v.is_none() {
            self.error(f.pos, f.key_path(key), "is required but missing");
        }
        v
    }

    pub(crate) fn string(&mut self, v: &Value<'_>, path: &str) -> Option<At<String>> {
        match v.get_ref() {
            DeValue::String(s) => Some(At { value: s.to_string(), pos: v.span().start }),
            _ => {
                self.type_error(v, path, "a string");
                None
            }
        }
    }

    pub(crate) fn opt_string(&mut self, f: &Fields<'_, '_>, key: &str) -> Option<At<String>> {
        let v = f.get(key)?;
        self.string(v, &f.key_path(key))
    }

    pub(crate) fn req_string(&mut self, f: &Fields<'_, '_>, key: &str) -> Option<At<String>> {
        let v = self.required(f, key)?;
        self.string(v, &f.key_path(key))
    }

    pub(crate) fn opt_bool(&mut self, f: &Fields<'_, '_>, key: &str) -> Option<bool> {
        let v = f.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(v, &f.key_path(key), "true or false");
                None
            }
        }
    }

    pub(crate) fn opt_integer(&mut self, f: &Fields<'_, '_>, key: &str) -> Option<At<i64>> {
        let v = f.get(key)?;
        let path = f.key_path(key);
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                Ok(n) => Some(At { value: n, pos: v.span().start }),
                Err(_) => {
                    self.error(v.span().start, path, format!("{} is out of range", i.as_str()));
                    None
                }
            },
            _ => {
                self.type_error(v, &path, "an integer");
                None
            }
        }
    }

    /// A number written as an integer or a float (`99.9`, `100`).
    pub(crate) fn number(&mut self, v: &Value<'_>, path: &str) -> Option<At<f64>> {
        let pos = v.span().start;
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok().map(|n| n as f64),
            DeValue::Float(x) => x.as_str().replace('_', "").parse::<f64>().ok(),
            _ => {
                self.type_error(v, path, "a number");
                return None;
            }
        };
        match parsed {
            Some(n) if n.is_finite() => Some(At { value: n, pos }),
            _ => {
                self.error(pos, path, "is not a finite number");
                None
            }
        }
    }

    pub(crate) fn array<'a, 'i>(&mut self, v: &'a Value<'i>, path: &str) -> Option<&'a [Value<'i>]> {
        match v.get_ref() {
            DeValue::Array(a) => Some(a),
            _ => {
                self.type_error(v, path, "an array");
                None
            }
        }
    }

    pub(crate) fn opt_string_list(&mut self, f: &Fields<'_, '_>, key: &str) -> Option<Vec<At<String>>> {
        let v = f.get(key)?;
        let path = f.key_path(key);
        let items = self.array(v, &path)?;
        Some(items.iter().enumerate().filter_map(|(i, item)| self.string(item, &index(&path, i))).collect())
    }

    pub(crate) fn duration(&mut self, v: &Value<'_>, path: &str) -> Option<At<Duration>> {
        let s = self.string(v, path)?;
        match parse_duration(&s.value) {
            Ok(d) => Some(At { value: d, pos: s.pos }),
            Err(e) => {
                self.error(s.pos, path, e);
                None
            }
        }
    }

    pub(crate) fn opt_duration(&mut self, f: &Fields<'_, '_>, key: &str) -> Option<At<Duration>> {
        let v = f.get(key)?;
        self.duration(v, &f.key_path(key))
    }

    /// A duration that must be positive: zero intervals and timeouts make no sense anywhere.
    pub(crate) fn opt_positive_duration(&mut self, f: &Fields<'_, '_>, key: &str) -> Option<At<Duration>> {
        let d = self.opt_duration(f, key)?;
        if d.value.is_zero() {
            self.error(d.pos, f.key_path(key), "\"0s\" is zero; use a positive duration such as \"30s\"");
            return None;
        }
        Some(d)
    }

    /// A positive duration no longer than `max`; longer is refused naming the bound.
    pub(crate) fn opt_duration_at_most(
        &mut self,
        f: &Fields<'_, '_>,
        key: &str,
        max: Duration,
    ) -> Option<At<Duration>> {
        let d = self.opt_positive_duration(f, key)?;
        if d.value > max {
            let (given, bound) = (format_duration(d.value), format_duration(max));
            self.error(
                d.pos,
                f.key_path(key),
                format!("{given} is longer than {bound}, the longest {key} probity takes"),
            );
            return None;
        }
        Some(d)
    }

    /// An RFC 3339 instant with an offset, written as a string or a TOML offset datetime.
    pub(crate) fn instant(&mut self, v: &Value<'_>, path: &str) -> Option<At<jiff::Timestamp>> {
        let pos = v.span().start;
        let text = match v.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Datetime(d) => d.to_string(),
            _ => {
                self.type_error(v, path, "an RFC 3339 instant such as \"2026-11-10T22:00:00Z\"");
                return None;
            }
        };
        match parse_instant(&text) {
            Ok(ts) => Some(At { value: ts, pos }),
            Err(e) => {
                self.error(pos, path, e);
                None
            }
        }
    }
}

fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("string \"{s}\""),
        DeValue::Integer(i) => format!("integer {}", i.as_str()),
        DeValue::Float(x) => format!("float {}", x.as_str()),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

/// The known key nearest to a misspelt one, if it is close enough to be a typo.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(closest("intervl", &["interval", "timeout"]), Some("interval"));
        assert_eq!(closest("zzz", &["interval", "timeout"]), None);
    }

    #[test]
    fn paths_quote_keys_that_are_not_bare() {
        assert_eq!(join("calendars", "uk-business"), "calendars.uk-business");
        assert_eq!(join("labels", "a b"), "labels.\"a b\"");
        assert_eq!(join("", "server"), "server");
    }
}
