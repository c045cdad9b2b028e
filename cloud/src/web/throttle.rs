//! The login throttle, built so that an attacker cannot turn it against the
//! people whose accounts they attack.
//!
//! An attempt comes from a **source**: the browser, when it carries a device
//! cookie from an earlier login to the same account, else the client address
//! (`crate::net::client_ip`). Failed attempts are remembered for an hour, and
//! each count earns a wait after its last failure (exponential, capped):
//!
//! - per account and source ([`PER_PAIR`]): 5 failures free, then 30 s doubling
//!   to 15 min. Only that source waits; other accounts from the same address,
//!   and the same account from elsewhere, do not;
//! - per account, over client addresses ([`PER_ACCOUNT`]): 20 failures free, then
//!   10 s doubling to 5 min. A guesser with many addresses is slowed to a dozen
//!   guesses an hour, and the account's own people are only ever delayed: a known
//!   browser does not count nor wait here;
//! - per client address, over accounts ([`PER_ADDRESS`]): 100 failures free, then
//!   5 s doubling to 1 min, against one address spraying many accounts. Known
//!   browsers do not wait here either, so people behind the same proxy as an
//!   attacker keep logging in.
//!
//! An attempt that must wait is refused before its password is checked, so
//! waiting never tells a right password from a wrong one. A successful login
//! clears its own source's failures; an owner clears an account's (unlock).

use crate::db::Db;
use crate::store::logins::{self, Failures};

/// How long failures are remembered, seconds.
pub const MEMORY_SECS: i64 = 3_600;

/// How many failures are free, and the wait after the last one beyond that.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub free: i64,
    pub first_wait_secs: i64,
    pub max_wait_secs: i64,
}

pub const PER_PAIR: Backoff = Backoff {
    free: 5,
    first_wait_secs: 30,
    max_wait_secs: 15 * 60,
};
pub const PER_ACCOUNT: Backoff = Backoff {
    free: 20,
    first_wait_secs: 10,
    max_wait_secs: 5 * 60,
};
pub const PER_ADDRESS: Backoff = Backoff {
    free: 100,
    first_wait_secs: 5,
    max_wait_secs: 60,
};

impl Backoff {
    /// Seconds to wait after the last of `failures` failures.
    pub fn wait_secs(&self, failures: i64) -> i64 {
        if failures < self.free {
            return 0;
        }
        let doublings = (failures - self.free).min(30) as u32;
        self.first_wait_secs
            .saturating_mul(1 << doublings)
            .min(self.max_wait_secs)
    }

    /// Until when (unix s) the next attempt waits; 0 when it need not.
    pub fn until(&self, f: Failures) -> i64 {
        match self.wait_secs(f.count) {
            0 => 0,
            wait => f.last_at + wait,
        }
    }
}

/// Where an attempt comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A client address (or `unknown` when the server has no socket information).
    Address(String),
    /// A browser that logged in to this account before (its device ID).
    Device(String),
}

/// The client address when the server has no socket information (in-process).
pub const UNKNOWN_ADDR: &str = "unknown";

impl Source {
    fn key(&self) -> String {
        match self {
            Source::Address(a) => format!("a:{a}"),
            Source::Device(d) => format!("d:{d}"),
        }
    }
}

/// Failures are kept per normalised email, bounded like the form's field.
fn account(email: &str) -> String {
    email.chars().take(254).collect()
}

/// Until when (unix s) an attempt on `email` from `source` must wait, if it must.
pub async fn wait_until(
    db: &Db,
    email: &str,
    source: &Source,
    at: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let email = account(email);
    let since = at - MEMORY_SECS;
    let key = source.key();
    let mut until = PER_PAIR.until(logins::pair_failures(db, &email, &key, since).await?);
    if let Source::Address(addr) = source {
        until = until.max(PER_ACCOUNT.until(logins::account_failures(db, &email, since).await?));
        if addr != UNKNOWN_ADDR {
            until = until.max(PER_ADDRESS.until(logins::source_failures(db, &key, since).await?));
        }
    }
    Ok((until > at).then_some(until))
}

pub async fn failed(db: &Db, email: &str, source: &Source, at: i64) -> Result<(), sqlx::Error> {
    logins::record_failure(db, &account(email), &source.key(), at).await
}

pub async fn succeeded(db: &Db, email: &str, source: &Source) -> Result<(), sqlx::Error> {
    logins::clear_pair(db, &account(email), &source.key()).await
}

/// Until when some source's logins to this account wait (the members page shows
/// it, with an Unlock button), if any does.
pub async fn locked_until(db: &Db, email: &str, at: i64) -> Result<Option<i64>, sqlx::Error> {
    let by_source = logins::failures_by_source(db, &account(email), at - MEMORY_SECS).await?;
    let mut from_addresses = Failures::default();
    let mut until = 0;
    for (source, f) in &by_source {
        until = until.max(PER_PAIR.until(*f));
        if source.starts_with("a:") {
            from_addresses.count += f.count;
            from_addresses.last_at = from_addresses.last_at.max(f.last_at);
        }
    }
    until = until.max(PER_ACCOUNT.until(from_addresses));
    Ok((until > at).then_some(until))
}

/// Clears every failure of an account; returns how many there were.
pub async fn unlock(db: &Db, email: &str) -> Result<u64, sqlx::Error> {
    logins::clear_account(db, &account(email)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_the_free_failures_and_stop_at_their_cap() {
        assert_eq!(PER_PAIR.wait_secs(4), 0);
        assert_eq!(PER_PAIR.wait_secs(5), 30);
        assert_eq!(PER_PAIR.wait_secs(6), 60);
        assert_eq!(PER_PAIR.wait_secs(9), 480);
        assert_eq!(PER_PAIR.wait_secs(10), 900);
        assert_eq!(PER_PAIR.wait_secs(1_000_000), 900);
        assert_eq!(PER_ACCOUNT.wait_secs(19), 0);
        assert_eq!(PER_ACCOUNT.wait_secs(100), 300);
        assert_eq!(PER_ADDRESS.wait_secs(99), 0);
        assert_eq!(PER_ADDRESS.wait_secs(1_000), 60);
        assert_eq!(
            PER_PAIR.until(Failures {
                count: 5,
                last_at: 1_000
            }),
            1_030
        );
        assert_eq!(
            PER_PAIR.until(Failures {
                count: 2,
                last_at: 1_000
            }),
            0
        );
    }
}
