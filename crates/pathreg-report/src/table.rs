//! A polars-free, column-oriented results table.

use serde::{Deserialize, Serialize};

use crate::ReportError;

/// One column of a [`Table`]: a homogeneous vector of values without nulls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Column {
    /// 64-bit floats (NaN and infinities allowed).
    F64(Vec<f64>),
    /// 64-bit signed integers.
    I64(Vec<i64>),
    /// UTF-8 strings.
    Str(Vec<String>),
    /// Booleans.
    Bool(Vec<bool>),
}

impl Column {
    /// Number of values in the column.
    pub fn len(&self) -> usize {
        match self {
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::Str(v) => v.len(),
            Column::Bool(v) => v.len(),
        }
    }

    /// Whether the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Short name of the column's type: `"f64"`, `"i64"`, `"str"` or `"bool"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Column::F64(_) => "f64",
            Column::I64(_) => "i64",
            Column::Str(_) => "str",
            Column::Bool(_) => "bool",
        }
    }
}

/// A results table: named columns of equal length, kept in insertion order.
///
/// The public API is independent of polars; conversion happens inside [`crate::write_csv`],
/// [`crate::write_parquet`] and [`crate::read_parquet`].
///
/// Equality compares names, order and values; `F64` columns compare with `==`, so a table holding
/// NaN is never equal to itself (compare bit patterns in that case).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    columns: Vec<(String, Column)>,
}

impl Table {
    /// An empty table (no columns, zero rows).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a column.
    ///
    /// # Errors
    /// [`ReportError::DuplicateColumn`] if a column called `name` exists, and
    /// [`ReportError::LengthMismatch`] if the table already has columns of a different length.
    pub fn push_column(&mut self, name: &str, column: Column) -> Result<(), ReportError> {
        if self.columns.iter().any(|(n, _)| n == name) {
            return Err(ReportError::DuplicateColumn {
                name: name.to_owned(),
            });
        }
        if let Some((_, first)) = self.columns.first()
            && first.len() != column.len()
        {
            return Err(ReportError::LengthMismatch {
                name: name.to_owned(),
                expected: first.len(),
                actual: column.len(),
            });
        }
        self.columns.push((name.to_owned(), column));
        Ok(())
    }

    /// Builder-style [`Table::push_column`].
    ///
    /// # Errors
    /// As [`Table::push_column`].
    pub fn with_column(mut self, name: &str, column: Column) -> Result<Self, ReportError> {
        self.push_column(name, column)?;
        Ok(self)
    }

    /// Number of rows (0 for a table without columns).
    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    /// Number of columns.
    pub fn n_columns(&self) -> usize {
        self.columns.len()
    }

    /// Column names in insertion order.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The column called `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// Iterates over `(name, column)` pairs in insertion order.
    pub fn columns(&self) -> impl Iterator<Item = (&str, &Column)> {
        self.columns.iter().map(|(n, c)| (n.as_str(), c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_column_rejects_length_mismatch() {
        let mut t = Table::new();
        t.push_column("a", Column::F64(vec![1.0, 2.0])).unwrap();
        let err = t.push_column("b", Column::I64(vec![1, 2, 3])).unwrap_err();
        match err {
            ReportError::LengthMismatch {
                name,
                expected,
                actual,
            } => {
                assert_eq!(name, "b");
                assert_eq!(expected, 2);
                assert_eq!(actual, 3);
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert_eq!(t.column_names(), vec!["a"]);
        assert_eq!(t.n_rows(), 2);
    }

    #[test]
    fn push_column_rejects_duplicate_name() {
        let mut t = Table::new();
        t.push_column("a", Column::Bool(vec![true])).unwrap();
        let err = t.push_column("a", Column::Bool(vec![false])).unwrap_err();
        assert!(matches!(err, ReportError::DuplicateColumn { name } if name == "a"));
    }

    #[test]
    fn accessors() {
        let t = Table::new()
            .with_column("x", Column::Str(vec!["p".into(), "q".into()]))
            .unwrap()
            .with_column("y", Column::I64(vec![3, 4]))
            .unwrap();
        assert_eq!(t.n_rows(), 2);
        assert_eq!(t.n_columns(), 2);
        assert_eq!(t.column_names(), vec!["x", "y"]);
        assert_eq!(t.column("y"), Some(&Column::I64(vec![3, 4])));
        assert!(t.column("z").is_none());
        assert_eq!(Table::new().n_rows(), 0);
    }
}
