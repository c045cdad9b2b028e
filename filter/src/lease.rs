//! The sync lease: which worker VM's root context talks to the control plane.
//!
//! Every worker's root context ticks; only the lease holder long-polls the
//! state and posts events. The lease lives in shared data as
//! `<holder id>:<expiry unix ms>` and changes hands only through a
//! compare-and-swap, so two workers never both believe they hold it for long.
//! A holder renews it on every tick; a holder that dies lets it expire and
//! another worker takes over.

/// How long a lease lasts without renewal.
pub const LEASE_MS: u64 = 10_000;

/// A lease as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub expires_ms: u64,
}

impl Lease {
    pub fn parse(bytes: &[u8]) -> Option<Lease> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (holder, expires) = text.rsplit_once(':')?;
        Some(Lease {
            holder: holder.to_owned(),
            expires_ms: expires.parse().ok()?,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        format!("{}:{}", self.holder, self.expires_ms).into_bytes()
    }
}

/// What a root context should write to hold the lease at `now_ms`, given what
/// it read; `None` when someone else holds a live lease.
pub fn claim(current: Option<&[u8]>, me: &str, now_ms: u64) -> Option<Lease> {
    let mine = Lease {
        holder: me.to_owned(),
        expires_ms: now_ms + LEASE_MS,
    };
    match current.and_then(Lease::parse) {
        Some(lease) if lease.holder != me && lease.expires_ms > now_ms => None,
        _ => Some(mine),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_expired_or_own_leases_are_claimed() {
        assert_eq!(
            claim(None, "a", 100).map(|l| l.expires_ms),
            Some(100 + LEASE_MS)
        );
        assert!(claim(Some(b"garbage"), "a", 100).is_some());
        assert!(claim(Some(b"b:99"), "a", 100).is_some(), "expired");
        assert!(claim(Some(b"a:500"), "a", 100).is_some(), "renewal");
        assert!(claim(Some(b"b:500"), "a", 100).is_none(), "held by another");
    }

    #[test]
    fn holder_ids_may_contain_colons() {
        let lease = Lease {
            holder: "vm:1:root".into(),
            expires_ms: 42,
        };
        assert_eq!(Lease::parse(&lease.encode()), Some(lease));
    }
}
