//! Every SQL statement of the Cloud. Each function that reads or changes an
//! organisation's data takes that organisation's ID and puts it in the `WHERE`
//! clause: a record of another organisation is simply "not found".

pub mod admin_log;
pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod key_usage;
pub mod keys;
pub mod logins;
pub mod manage_keys;
pub mod orgs;
pub mod pins;
pub mod sessions;
pub mod sidecars;
pub mod tokens;
pub mod usage;

use crate::db::Backend;

/// Builds `($1, $2, …), ($k, …)` for a multi-row `VALUES` with `cols` columns,
/// values bound in order. On SQLite every placeholder is an anonymous `?`: the
/// driver looks each numbered one up by name in a list SQLite walks from the
/// start, so `$n` cost time quadratic in the values of a statement (2,000 per
/// 200-row insert: most of ingestion's CPU before).
pub(crate) fn values_placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 6);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&n.to_string());
                }
            }
            n += 1;
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::{values_placeholders, Backend};

    #[test]
    fn placeholders_number_rows_in_order() {
        assert_eq!(
            values_placeholders(Backend::Postgres, 2, 2),
            "($1, $2), ($3, $4)"
        );
        assert_eq!(values_placeholders(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
    }
}
