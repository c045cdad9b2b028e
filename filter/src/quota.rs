//! Plan enforcement: the daily check quota and the agent limit, exact across
//! worker VMs.
//!
//! Every worker VM of one Envoy shares two records in shared data and changes
//! them only by compare-and-swap ([`Store`]), so N workers racing for the last
//! check of the day admit exactly one request between them:
//! - the check counter (`CHECKS_KEY`): checks admitted today, see [`Counter`];
//! - the agent roster (`AGENTS_KEY`): distinct agent IDs admitted today.
//!
//! Days are UTC; a record from an earlier day counts as empty. In Cloud mode the
//! Cloud's `remaining` is shared by every sidecar of the organisation: the
//! counter reconciles with it without counting this sidecar's own checks twice
//! (see [`Allowance`]).

use serde::Deserialize;
use serde_json::json;
use std::collections::HashSet;

use crate::refusal::{ErrorCode, Refusal};

/// Shared-data key of the check counter.
pub const CHECKS_KEY: &str = "kalguard.quota.checks";
/// Shared-data key of today's agent roster.
pub const AGENTS_KEY: &str = "kalguard.quota.agents";
/// Compare-and-swap attempts before a request fails closed. Each attempt only
/// loses to another worker's successful write, so running out means hundreds
/// of concurrent admissions on one record; refusing then is safe.
pub const MAX_ATTEMPTS: usize = 256;

const DAY_SECONDS: i64 = 86_400;

/// The UTC day number of unix second `unix`.
pub fn day_of(unix: i64) -> i64 {
    unix.div_euclid(DAY_SECONDS)
}

/// Unix seconds of the UTC midnight after `unix`: when today's quota resets.
pub fn next_reset(unix: i64) -> i64 {
    (day_of(unix) + 1) * DAY_SECONDS
}

/// Compare-and-swap access to the VM-shared key-value store (proxy-wasm shared
/// data). `cas` is the token `get` returned; `None` writes unconditionally
/// (only used to create a missing record).
pub trait Store {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

/// Why a [`Store`] call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// Another writer changed the record since it was read.
    CasMismatch,
    /// The host refused the call.
    Host,
}

/// The plan limits in force; `None` is unlimited. In the plugin configuration
/// (`limits`, local mode): `{"checks_per_day": 5000, "max_agents": 3}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub checks_per_day: Option<u64>,
    pub max_agents: Option<u64>,
}

impl Limits {
    /// Limits from the license's numbers, where any negative value (the
    /// Cloud's `-1`) means unlimited.
    pub fn from_plan(checks_per_day: i64, max_agents: i64) -> Limits {
        Limits {
            checks_per_day: u64::try_from(checks_per_day).ok(),
            max_agents: u64::try_from(max_agents).ok(),
        }
    }
}

/// What the Cloud said about the organisation's day, from the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloudUsage {
    /// Checks the organisation has left (all its sidecars together).
    pub remaining: u64,
    /// The UTC day `remaining` is about.
    pub day: i64,
    /// Checks of this sidecar that `remaining` already counts (the control
    /// plane's accepted reports for `day`).
    pub reported: u64,
}

/// The check counter as stored: `<day> <used> <base>`, where `base` is the
/// control plane's `reported` when this Envoy's counter met its first Cloud
/// figure for the day (`-` until then; 0 for a counter that rolled over at
/// midnight, since nothing was reported for a day that had not begun).
///
/// Checks this Envoy made that the Cloud already counts are `reported - base`,
/// so the checks this Envoy may still admit are
/// `remaining - (used - (reported - base))`: nothing counted twice, and a
/// restarted Envoy (a new counter) does not take the earlier process's reported
/// checks for its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    pub day: i64,
    pub used: u64,
    pub base: Option<u64>,
}

impl Counter {
    /// A counter created on `day` by a starting Envoy.
    pub fn fresh(day: i64) -> Counter {
        Counter {
            day,
            used: 0,
            base: None,
        }
    }

    pub fn parse(bytes: &[u8]) -> Option<Counter> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        let day = parts.next()?.parse().ok()?;
        let used = parts.next()?.parse().ok()?;
        let base = match parts.next()? {
            "-" => None,
            n => Some(n.parse().ok()?),
        };
        parts
            .next()
            .is_none()
            .then_some(Counter { day, used, base })
    }

    pub fn encode(&self) -> Vec<u8> {
        match self.base {
            Some(base) => format!("{} {} {base}", self.day, self.used),
            None => format!("{} {} -", self.day, self.used),
        }
        .into_bytes()
    }

    /// The counter as it stands on `today`: an earlier day's rolls over.
    fn on(self, today: i64) -> Counter {
        if self.day == today {
            self
        } else {
            Counter {
                day: today,
                used: 0,
                base: Some(0),
            }
        }
    }
}

/// How many checks this Envoy may admit today, all told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowance {
    Unlimited,
    Limited(u64),
}

impl Allowance {
    /// The allowance for `counter` (already on `today`) and, when known, the
    /// counter's base for today.
    fn of(
        limits: &Limits,
        cloud: Option<&CloudUsage>,
        counter: &Counter,
    ) -> (Allowance, Option<u64>) {
        let Some(plan) = limits.checks_per_day else {
            return (Allowance::Unlimited, counter.base);
        };
        match cloud.filter(|c| c.day == counter.day) {
            Some(cloud) => {
                let base = counter.base.unwrap_or(cloud.reported);
                let already_counted = cloud.reported.saturating_sub(base);
                let org = cloud.remaining.saturating_add(already_counted);
                (Allowance::Limited(plan.min(org)), Some(base))
            }
            None => (Allowance::Limited(plan), counter.base),
        }
    }

    /// Checks left once `used` are spent; `None` when unlimited.
    pub fn left(self, used: u64) -> Option<u64> {
        match self {
            Allowance::Unlimited => None,
            Allowance::Limited(n) => Some(n.saturating_sub(used)),
        }
    }
}

/// Where today's quota stands, for the `x-kalguard-usage-remaining` and
/// `x-ratelimit-reset` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Checks left; `None` when unlimited.
    pub remaining: Option<u64>,
    /// Unix seconds of the next reset.
    pub reset_at: i64,
}

impl Usage {
    /// The header value: the number left, `-1` when unlimited.
    pub fn remaining_header(&self) -> String {
        self.remaining
            .map_or_else(|| "-1".to_owned(), |n| n.to_string())
    }
}

/// What the plan gate needs to judge one request.
#[derive(Clone, Copy, Debug)]
pub struct Gate<'a> {
    pub limits: &'a Limits,
    pub cloud: Option<&'a CloudUsage>,
    /// The organisation's agents the Cloud has seen today (all its sidecars).
    pub org_agents: Option<&'a OrgAgents>,
    /// Unix seconds.
    pub now: i64,
}

/// The agents with a check today across the organisation, from the Cloud: the
/// agent limit counts them with this Envoy's own roster, so it holds for the
/// organisation rather than per sidecar (up to the Cloud's sync lag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgAgents {
    /// The UTC day the list is about.
    pub day: i64,
    pub agents: Vec<String>,
}

impl Gate<'_> {
    fn today(&self) -> i64 {
        day_of(self.now)
    }

    /// Counts one check if the quota allows it: the usage after it, or the
    /// 429 refusal. A store failure refuses (503): never an uncounted check.
    /// Without a daily limit nothing is counted (nothing would read it).
    pub fn meter(&self, store: &dyn Store) -> Result<Usage, Refusal> {
        let reset_at = next_reset(self.now);
        if self.limits.checks_per_day.is_none() {
            return Ok(Usage {
                remaining: None,
                reset_at,
            });
        }
        let today = self.today();
        compare_and_swap(store, CHECKS_KEY, |stored| {
            let counter = decode_counter(stored, today)?.on(today);
            let (allowance, base) = Allowance::of(self.limits, self.cloud, &counter);
            let left = match allowance.left(counter.used) {
                None => None,
                Some(0) => return Err(exhausted(reset_at, self.now)),
                Some(left) => Some(left - 1),
            };
            let next = Counter {
                used: counter.used + 1,
                base,
                ..counter
            };
            let usage = Usage {
                remaining: left,
                reset_at,
            };
            Ok(Step::Write(next.encode(), usage))
        })
    }

    /// Where the quota stands without counting a check (for responses to
    /// requests that are not checks, or refused before metering).
    pub fn peek(&self, store: &dyn Store) -> Usage {
        if self.limits.checks_per_day.is_none() {
            return Usage {
                remaining: None,
                reset_at: next_reset(self.now),
            };
        }
        let today = self.today();
        let counter = match store.get(CHECKS_KEY) {
            Ok(stored) => decode_counter(stored.as_ref().map(|(v, _)| v.as_slice()), today)
                .map_or_else(|_| Counter::fresh(today), |c| c.on(today)),
            Err(_) => Counter::fresh(today),
        };
        let (allowance, _) = Allowance::of(self.limits, self.cloud, &counter);
        Usage {
            remaining: allowance.left(counter.used),
            reset_at: next_reset(self.now),
        }
    }

    /// Admits `agent` under the agent limit: agents already admitted today keep
    /// working; a new one is refused (403) once `max_agents` are in.
    /// `known` is the VM's cache of agents admitted today, so the shared
    /// roster is read only on an agent's first request per VM per day.
    pub fn admit_agent(
        &self,
        store: &dyn Store,
        known: &mut KnownAgents,
        agent: &str,
    ) -> Result<(), Refusal> {
        let Some(max) = self.limits.max_agents else {
            return Ok(());
        };
        let today = self.today();
        if known.contains(today, agent) {
            return Ok(());
        }
        let org = self.org_agents.filter(|o| o.day == today);
        if org.is_some_and(|o| o.agents.iter().any(|a| a == agent)) {
            known.insert(today, agent);
            return Ok(());
        }
        compare_and_swap(store, AGENTS_KEY, |stored| {
            let mut roster = stored
                .and_then(Roster::parse)
                .filter(|r| r.day == today)
                .unwrap_or(Roster {
                    day: today,
                    agents: Vec::new(),
                });
            if roster.agents.iter().any(|a| a == agent) {
                return Ok(Step::Done(()));
            }
            let elsewhere = org.map_or(0, |o| {
                o.agents
                    .iter()
                    .filter(|a| !roster.agents.contains(a))
                    .count()
            });
            let admitted = roster.agents.len() + elsewhere;
            if admitted as u64 >= max {
                return Err(Refusal::new(
                    ErrorCode::AgentLimitExceeded,
                    format!(
                        "the plan allows {max} agent{} per day and {admitted} already checked in today; agent `{agent}` is refused until the next UTC day",
                        if max == 1 { "" } else { "s" },
                    ),
                ));
            }
            roster.agents.push(agent.to_owned());
            Ok(Step::Write(roster.encode(), ()))
        })?;
        known.insert(today, agent);
        Ok(())
    }
}

/// What a compare-and-swap step decided about the record it read.
enum Step<T> {
    /// Nothing to write.
    Done(T),
    /// Write this value, unless another worker wrote first.
    Write(Vec<u8>, T),
}

/// Reads `key` (`None` when missing), lets `decide` judge it, and writes what
/// it asks for only if no other worker wrote in between; otherwise reads again.
/// Running out of attempts or a host failure refuses (503): a decision is never
/// taken on a write that did not land.
fn compare_and_swap<T>(
    store: &dyn Store,
    key: &str,
    mut decide: impl FnMut(Option<&[u8]>) -> Result<Step<T>, Refusal>,
) -> Result<T, Refusal> {
    for _ in 0..MAX_ATTEMPTS {
        let (value, cas) = match store.get(key) {
            Ok(Some((value, cas))) => (Some(value), Some(cas)),
            Ok(None) => (None, None),
            Err(_) => return Err(store_failure()),
        };
        match decide(value.as_deref())? {
            Step::Done(result) => return Ok(result),
            Step::Write(next, result) => match store.set(key, &next, cas) {
                Ok(()) => return Ok(result),
                Err(StoreError::CasMismatch) => continue,
                Err(StoreError::Host) => return Err(store_failure()),
            },
        }
    }
    Err(store_failure())
}

/// Creates the check counter and the agent roster if they are missing. Called
/// by every worker VM at configuration, before it serves a request: shared
/// data has no create-if-absent, so a record created on the request path could
/// overwrite another worker's first write.
pub fn seed(store: &dyn Store, now: i64) -> Result<(), StoreError> {
    if !matches!(store.get(CHECKS_KEY)?, Some((value, _)) if Counter::parse(&value).is_some()) {
        store.set(CHECKS_KEY, &Counter::fresh(day_of(now)).encode(), None)?;
    }
    if !matches!(store.get(AGENTS_KEY)?, Some((value, _)) if Roster::parse(&value).is_some()) {
        let roster = Roster {
            day: day_of(now),
            agents: Vec::new(),
        };
        store.set(AGENTS_KEY, &roster.encode(), None)?;
    }
    Ok(())
}

/// The stored counter; a missing one (seeded at configuration, so missing
/// only if seeding failed) is a fresh one, an unreadable one refuses.
fn decode_counter(stored: Option<&[u8]>, today: i64) -> Result<Counter, Refusal> {
    match stored {
        Some(value) => Counter::parse(value).ok_or_else(store_failure),
        None => Ok(Counter::fresh(today)),
    }
}

fn exhausted(reset_at: i64, now: i64) -> Refusal {
    let mut refusal = Refusal::new(
        ErrorCode::RateLimitExceeded,
        "Rate limit exceeded: the plan's checks for today are used up",
    )
    .with_data(json!({"remaining": 0, "resetAt": reset_at}));
    refusal.retry_after = Some(u64::try_from(reset_at - now).unwrap_or(0).max(1));
    refusal.rate_limit_reset = Some(reset_at);
    refusal
}

fn store_failure() -> Refusal {
    Refusal::new(
        ErrorCode::KalguardUnavailable,
        "internal error: the usage counter is unavailable",
    )
}

/// The agents admitted today, as stored: the day, then one agent ID per line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Roster {
    day: i64,
    agents: Vec<String>,
}

impl Roster {
    fn parse(bytes: &[u8]) -> Option<Roster> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.split('\n');
        let day = lines.next()?.parse().ok()?;
        Some(Roster {
            day,
            agents: lines.filter(|l| !l.is_empty()).map(str::to_owned).collect(),
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut text = self.day.to_string();
        for agent in &self.agents {
            text.push('\n');
            text.push_str(agent);
        }
        text.into_bytes()
    }
}

/// One VM's cache of the agents it has seen admitted today.
#[derive(Debug, Default)]
pub struct KnownAgents {
    day: i64,
    agents: HashSet<String>,
}

impl KnownAgents {
    fn contains(&self, day: i64, agent: &str) -> bool {
        self.day == day && self.agents.contains(agent)
    }

    fn insert(&mut self, day: i64, agent: &str) {
        if self.day != day {
            self.day = day;
            self.agents.clear();
        }
        self.agents.insert(agent.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Barrier, Mutex};

    /// Shared data as Envoy implements it: a missing key is always created,
    /// a present one is replaced only with its current CAS (or none).
    #[derive(Default)]
    struct SharedData {
        entries: Mutex<HashMap<String, (Vec<u8>, u32)>>,
    }

    impl Store for SharedData {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            Ok(self.entries.lock().unwrap().get(key).cloned())
        }

        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
            let mut entries = self.entries.lock().unwrap();
            let next = entries.values().map(|(_, c)| *c).max().unwrap_or(0) + 1;
            match entries.get_mut(key) {
                Some(entry) => {
                    if cas.is_some_and(|c| c != entry.1) {
                        return Err(StoreError::CasMismatch);
                    }
                    *entry = (value.to_vec(), next);
                }
                None => {
                    entries.insert(key.to_owned(), (value.to_vec(), next));
                }
            }
            Ok(())
        }
    }

    const NOON: i64 = 1_714_651_200; // 2024-05-02T12:00:00Z
    const MIDNIGHT: i64 = 1_714_694_400; // 2024-05-03T00:00:00Z

    fn limited(checks: u64) -> Limits {
        Limits {
            checks_per_day: Some(checks),
            max_agents: None,
        }
    }

    fn gate<'a>(limits: &'a Limits, cloud: Option<&'a CloudUsage>, now: i64) -> Gate<'a> {
        Gate {
            limits,
            cloud,
            org_agents: None,
            now,
        }
    }

    #[test]
    fn the_agent_limit_counts_the_organisations_other_sidecars() {
        let store = seeded(NOON);
        let limits = Limits {
            checks_per_day: None,
            max_agents: Some(2),
        };
        let org = OrgAgents {
            day: day_of(NOON),
            agents: vec!["elsewhere".into()],
        };
        let g = Gate {
            org_agents: Some(&org),
            ..gate(&limits, None, NOON)
        };
        let mut vm = KnownAgents::default();
        g.admit_agent(&store, &mut vm, "here").unwrap();
        let refused = g.admit_agent(&store, &mut vm, "third").unwrap_err();
        assert_eq!(refused.code, ErrorCode::AgentLimitExceeded);
        g.admit_agent(&store, &mut vm, "elsewhere")
            .expect("an agent the organisation already has is no new agent");
        // Once the Cloud lists this sidecar's agent too, it is counted once.
        let both = OrgAgents {
            day: day_of(NOON),
            agents: vec!["elsewhere".into(), "here".into()],
        };
        let g = Gate {
            org_agents: Some(&both),
            ..gate(&limits, None, NOON)
        };
        assert!(g
            .admit_agent(&store, &mut KnownAgents::default(), "third")
            .is_err());
        // Yesterday's list does not count.
        let stale = OrgAgents {
            day: day_of(NOON) - 1,
            agents: vec!["a".into(), "b".into()],
        };
        let g = Gate {
            org_agents: Some(&stale),
            ..gate(&limits, None, MIDNIGHT)
        };
        g.admit_agent(&store, &mut KnownAgents::default(), "third")
            .unwrap();
    }

    fn seeded(now: i64) -> SharedData {
        let store = SharedData::default();
        seed(&store, now).unwrap();
        store
    }

    fn stored(store: &SharedData) -> Counter {
        Counter::parse(&store.get(CHECKS_KEY).unwrap().unwrap().0).unwrap()
    }

    #[test]
    fn days_are_utc_and_reset_at_the_next_midnight() {
        assert_eq!(next_reset(NOON), MIDNIGHT);
        assert_eq!(next_reset(MIDNIGHT - 1), MIDNIGHT);
        assert_eq!(next_reset(MIDNIGHT), MIDNIGHT + 86_400);
        assert_eq!(day_of(-1), -1, "before 1970 still rounds down");
    }

    #[test]
    fn counters_round_trip_and_garbage_is_not_a_counter() {
        for counter in [
            Counter::fresh(19_845),
            Counter {
                day: 19_845,
                used: 12,
                base: Some(7),
            },
        ] {
            assert_eq!(Counter::parse(&counter.encode()), Some(counter));
        }
        for bad in ["", "1 2", "1 2 x", "1 2 3 4", "a 2 -", "1 -2 -"] {
            assert_eq!(Counter::parse(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn exactly_the_limit_is_admitted_then_429_with_retry_after_and_reset() {
        let store = seeded(NOON);
        let limits = limited(3);
        let g = gate(&limits, None, NOON);
        let left: Vec<_> = (0..3).map(|_| g.meter(&store).unwrap().remaining).collect();
        assert_eq!(left, [Some(2), Some(1), Some(0)]);
        let refusal = g.meter(&store).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::RateLimitExceeded);
        assert_eq!(refusal.status(), 429);
        assert_eq!(refusal.retry_after, Some(43_200));
        assert_eq!(refusal.rate_limit_reset, Some(MIDNIGHT));
        assert_eq!(
            refusal.data,
            Some(json!({"remaining": 0, "resetAt": MIDNIGHT}))
        );
        assert_eq!(stored(&store).used, 3, "a refused request is not a check");
        assert_eq!(g.peek(&store).remaining, Some(0));
    }

    #[test]
    fn the_day_rolls_over_at_utc_midnight() {
        let store = seeded(NOON);
        let limits = limited(1);
        assert!(gate(&limits, None, NOON).meter(&store).is_ok());
        assert!(gate(&limits, None, MIDNIGHT - 1).meter(&store).is_err());
        let usage = gate(&limits, None, MIDNIGHT).meter(&store).unwrap();
        assert_eq!(usage.remaining, Some(0));
        assert_eq!(usage.reset_at, MIDNIGHT + 86_400);
        assert_eq!(
            stored(&store).base,
            Some(0),
            "a new day has reported nothing yet"
        );
    }

    #[test]
    fn unlimited_plans_cost_no_store_access_and_say_minus_one() {
        let store = seeded(NOON);
        let usage = gate(&Limits::default(), None, NOON).meter(&store).unwrap();
        assert_eq!(usage.remaining, None);
        assert_eq!(usage.remaining_header(), "-1");
        assert_eq!(stored(&store).used, 0);
        assert_eq!(Limits::from_plan(-1, -1), Limits::default());
        assert_eq!(
            Limits::from_plan(1000, 1),
            Limits {
                checks_per_day: Some(1000),
                max_agents: Some(1)
            }
        );
    }

    #[test]
    fn the_clouds_remaining_is_shared_without_counting_own_checks_twice() {
        let store = seeded(NOON);
        let limits = limited(100);
        // The Cloud has 10 left for the org; this sidecar has reported nothing.
        let mut cloud = CloudUsage {
            remaining: 10,
            day: day_of(NOON),
            reported: 0,
        };
        for _ in 0..4 {
            gate(&limits, Some(&cloud), NOON).meter(&store).unwrap();
        }
        // Those 4 are reported and counted by the Cloud, and another sidecar
        // used 2: remaining 10 - 4 - 2 = 4, of which this sidecar's 4 are in.
        cloud.remaining = 4;
        cloud.reported = 4;
        let left = gate(&limits, Some(&cloud), NOON).peek(&store).remaining;
        assert_eq!(left, Some(4), "own checks are not subtracted twice");
        for _ in 0..4 {
            gate(&limits, Some(&cloud), NOON).meter(&store).unwrap();
        }
        assert!(gate(&limits, Some(&cloud), NOON).meter(&store).is_err());
    }

    #[test]
    fn a_restarted_envoy_does_not_take_earlier_reports_for_its_own() {
        // The control plane reported 50 checks of a previous Envoy process; the
        // Cloud has 5 left. The new process's counter starts at 0.
        let store = seeded(NOON);
        let limits = limited(100);
        let cloud = CloudUsage {
            remaining: 5,
            day: day_of(NOON),
            reported: 50,
        };
        let admitted = (0..10)
            .filter(|_| gate(&limits, Some(&cloud), NOON).meter(&store).is_ok())
            .count();
        assert_eq!(admitted, 5);
        assert_eq!(stored(&store).base, Some(50));
    }

    #[test]
    fn a_cloud_figure_for_another_day_is_ignored() {
        let store = seeded(MIDNIGHT);
        let limits = limited(2);
        let yesterday = CloudUsage {
            remaining: 0,
            day: day_of(NOON),
            reported: 0,
        };
        let usage = gate(&limits, Some(&yesterday), MIDNIGHT)
            .meter(&store)
            .unwrap();
        assert_eq!(usage.remaining, Some(1));
    }

    #[test]
    fn workers_racing_for_the_last_checks_never_over_admit() {
        let store = Arc::new(seeded(NOON));
        let limits = limited(1_000);
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let admitted: usize = (0..threads)
            .map(|_| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..400)
                        .filter(|_| gate(&limits, None, NOON).meter(store.as_ref()).is_ok())
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(admitted, 1_000);
        assert_eq!(stored(&store).used, 1_000);
    }

    #[test]
    fn a_failing_store_refuses_rather_than_admitting_uncounted() {
        struct Broken;
        impl Store for Broken {
            fn get(&self, _: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
                Err(StoreError::Host)
            }
            fn set(&self, _: &str, _: &[u8], _: Option<u32>) -> Result<(), StoreError> {
                Err(StoreError::Host)
            }
        }
        let limits = Limits {
            checks_per_day: Some(5),
            max_agents: Some(5),
        };
        let g = gate(&limits, None, NOON);
        assert_eq!(
            g.meter(&Broken).unwrap_err().code,
            ErrorCode::KalguardUnavailable
        );
        let refused = g.admit_agent(&Broken, &mut KnownAgents::default(), "a");
        assert_eq!(refused.unwrap_err().code, ErrorCode::KalguardUnavailable);
    }

    #[test]
    fn agents_beyond_the_limit_are_refused_and_admitted_ones_keep_working() {
        let store = SharedData::default();
        let limits = Limits {
            checks_per_day: None,
            max_agents: Some(2),
        };
        let g = gate(&limits, None, NOON);
        // Two VMs, each with its own cache.
        let (mut vm1, mut vm2) = (KnownAgents::default(), KnownAgents::default());
        g.admit_agent(&store, &mut vm1, "a").unwrap();
        g.admit_agent(&store, &mut vm2, "b").unwrap();
        let refused = g.admit_agent(&store, &mut vm1, "c").unwrap_err();
        assert_eq!(refused.code, ErrorCode::AgentLimitExceeded);
        assert_eq!(refused.status(), 403);
        g.admit_agent(&store, &mut vm1, "b").unwrap();
        g.admit_agent(&store, &mut vm2, "a").unwrap();
        // A new UTC day starts a new roster.
        gate(&limits, None, MIDNIGHT)
            .admit_agent(&store, &mut vm1, "c")
            .unwrap();
    }

    #[test]
    fn agents_racing_for_the_last_slot_admit_exactly_one() {
        let store = Arc::new(seeded(NOON));
        let limits = Limits {
            checks_per_day: None,
            max_agents: Some(3),
        };
        let barrier = Arc::new(Barrier::new(8));
        let admitted: usize = (0..8)
            .map(|i| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    let g = gate(&limits, None, NOON);
                    usize::from(
                        g.admit_agent(
                            store.as_ref(),
                            &mut KnownAgents::default(),
                            &format!("agent-{i}"),
                        )
                        .is_ok(),
                    )
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(admitted, 3);
    }

    #[test]
    fn seeding_keeps_an_existing_counter() {
        let store = seeded(NOON);
        gate(&limited(9), None, NOON).meter(&store).unwrap();
        seed(&store, NOON).unwrap();
        assert_eq!(stored(&store).used, 1);
    }
}
