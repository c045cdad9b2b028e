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

/// Builds `($1, $2, …), ($k, …)` for a multi-row `VALUES` with `cols` columns.
pub(crate) fn values_placeholders(rows: usize, cols: usize, first: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 5);
    let mut n = first;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&n.to_string());
            n += 1;
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_rows_in_order() {
        assert_eq!(super::values_placeholders(2, 2, 1), "($1, $2), ($3, $4)");
        assert_eq!(super::values_placeholders(1, 3, 2), "($2, $3, $4)");
    }
}
