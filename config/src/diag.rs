//! Config diagnostics: every problem found in a file, each rendered as
//! `FILE:LINE:COL: key.path: what is wrong`, reported together in one run.

use std::fmt;

/// One problem in a config file, anchored at a byte offset of its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Line and column (1-based, column counted in characters).
    pub line: usize,
    pub column: usize,
    /// Dotted key path such as `services[2].probes[0].timeout`.
    pub path: String,
    pub message: String,
}

/// All problems found in one file, in source order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    pub file: String,
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: {}: {}", self.file, d.line, d.column, d.path, d.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects diagnostics while a file is read; offsets become line/column at the end.
pub(crate) struct Diagnostics<'s> {
    source: &'s str,
    pending: Vec<(usize, String, String)>,
}

impl<'s> Diagnostics<'s> {
    pub(crate) fn new(source: &'s str) -> Self {
        Diagnostics { source, pending: Vec::new() }
    }

    pub(crate) fn error(&mut self, offset: usize, path: impl Into<String>, message: impl Into<String>) {
        self.pending.push((offset, path.into(), message.into()));
    }

    pub(crate) fn line_of(&self, offset: usize) -> usize {
        line_column(self.source, offset).0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub(crate) fn finish(mut self, file: &str) -> Result<(), ConfigErrors> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // Stable sort keeps the order rules ran in for problems at the same spot.
        self.pending.sort_by_key(|(offset, _, _)| *offset);
        self.pending.dedup();
        let errors = self
            .pending
            .into_iter()
            .map(|(offset, path, message)| {
                let (line, column) = line_column(self.source, offset);
                Diagnostic { line, column, path, message }
            })
            .collect();
        Err(ConfigErrors { file: file.to_string(), errors })
    }
}

/// 1-based line and character column of a byte offset.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = source[line_start..offset].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one_and_in_characters() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(src, 0), (1, 1));
        assert_eq!(line_column(src, 6), (2, 1));
        // 'é' is two bytes but one column
        let eq = src.find('=').unwrap();
        assert_eq!(line_column(src, eq), (1, 3));
        let second_eq = src.rfind('=').unwrap();
        assert_eq!(line_column(src, second_eq), (2, 4));
    }

    #[test]
    fn errors_render_in_source_order() {
        let src = "x\ny\nz\n";
        let mut d = Diagnostics::new(src);
        d.error(4, "z", "third");
        d.error(0, "x", "first");
        let err = d.finish("f.toml").unwrap_err();
        assert_eq!(err.to_string(), "f.toml:1:1: x: first\nf.toml:3:1: z: third");
    }
}
