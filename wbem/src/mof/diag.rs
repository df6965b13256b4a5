//! Positions and diagnostics. Every message the compiler produces points at a file, a line and a
//! column, so that a broken schema is a one-line fix for whoever reads the start-up log.

use std::fmt;
use std::sync::Arc;

/// A position in one source text; lines and columns count from 1, columns in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn new(line: u32, col: u32) -> Pos {
        Pos { line, col }
    }
}

/// A position in a named file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl Location {
    pub fn new(file: &Arc<str>, pos: Pos) -> Location {
        Location { file: file.clone(), line: pos.line, col: pos.col }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0 stands for the whole file (it could not be read at all).
        if self.line == 0 {
            f.write_str(&self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

/// One error or warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub location: Location,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: &Arc<str>, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic { location: Location::new(file, pos), message: message.into() }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// A failed compilation: one or more errors, in the order they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MofError {
    pub errors: Vec<Diagnostic>,
}

impl MofError {
    pub fn single(diagnostic: Diagnostic) -> MofError {
        MofError { errors: vec![diagnostic] }
    }

    /// The first error; a `MofError` is never empty.
    pub fn first(&self) -> &Diagnostic {
        &self.errors[0]
    }
}

impl fmt::Display for MofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for MofError {}

/// A syntax error inside one text, before the file name is known to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl SyntaxError {
    pub fn new(pos: Pos, message: impl Into<String>) -> SyntaxError {
        SyntaxError { pos, message: message.into() }
    }

    pub fn in_file(self, file: &Arc<str>) -> Diagnostic {
        Diagnostic::new(file, self.pos, self.message)
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.pos.line, self.pos.col, self.message)
    }
}
