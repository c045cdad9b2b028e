//! A stand-in for Envoy, as an [`Exchange`](super::Exchange) sees it: header
//! maps and body buffers the effects change as Envoy's would, a record of
//! every effect, and host calls that can be made to fail.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{Effect, Failure, Host, LocalReply, Side, Tally};
use crate::event::Event;
use crate::quota::{Store, StoreError};

/// One request's worth of Envoy.
#[derive(Default)]
pub struct Mock {
    pub request_headers: Vec<(String, String)>,
    pub request_body: Vec<u8>,
    pub answer_headers: Vec<(String, String)>,
    pub answer_body: Vec<u8>,
    /// Every effect asked for, in order (including those that failed).
    pub effects: Vec<Effect>,
    /// An effect this returns true for fails, as a host call can.
    pub fails: Option<fn(&Effect) -> bool>,
    /// Body reads fail.
    pub unreadable: bool,
    pub now_ms: u64,
}

impl Mock {
    pub fn headers_of(&self, side: Side) -> &[(String, String)] {
        match side {
            Side::Request => &self.request_headers,
            Side::Answer => &self.answer_headers,
        }
    }

    /// The value of header `name` on `side`, as the effects left it.
    pub fn header(&self, side: Side, name: &str) -> Option<&str> {
        super::header(self.headers_of(side), name)
    }

    /// The local answers sent.
    pub fn replies(&self) -> Vec<&LocalReply> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Reply(reply) => Some(reply),
                _ => None,
            })
            .collect()
    }

    /// The events reported.
    pub fn events(&self) -> Vec<&Event> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Emit(event) => Some(event),
                _ => None,
            })
            .collect()
    }

    /// The decisions counted.
    pub fn tallies(&self) -> Vec<Tally> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Tally(tally) => Some(*tally),
                _ => None,
            })
            .collect()
    }

    /// The approval requests filed.
    pub fn approvals(&self) -> Vec<crate::approval::ApprovalRequest> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::AskApproval(call) => serde_json::from_slice(&call.body).ok(),
                _ => None,
            })
            .collect()
    }

    /// The MCP tool pins filed.
    pub fn pin_filings(&self) -> Vec<crate::pins::PinFiling> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::AskPins(call) => serde_json::from_slice(&call.body).ok(),
                _ => None,
            })
            .collect()
    }

    /// The request headers removed.
    pub fn removed(&self, side: Side) -> Vec<&str> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::RemoveHeader(s, name) if *s == side => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }
}

impl Host for Mock {
    fn headers(&mut self, side: Side) -> Vec<(String, String)> {
        self.headers_of(side).to_vec()
    }

    fn body(&mut self, side: Side, len: usize) -> Result<Vec<u8>, Failure> {
        if self.unreadable {
            return Err(Failure("mock: unreadable body"));
        }
        let body = match side {
            Side::Request => &self.request_body,
            Side::Answer => &self.answer_body,
        };
        Ok(body[..len.min(body.len())].to_vec())
    }

    fn now_ms(&mut self) -> u64 {
        self.now_ms
    }

    fn apply(&mut self, effect: &Effect) -> Result<(), Failure> {
        self.effects.push(effect.clone());
        if self.fails.is_some_and(|fails| fails(effect)) {
            return Err(Failure("mock: the host call failed"));
        }
        let (headers, body) = match effect {
            Effect::RemoveHeader(Side::Request, _)
            | Effect::SetHeader(Side::Request, ..)
            | Effect::ReplaceBody {
                side: Side::Request,
                ..
            } => (&mut self.request_headers, &mut self.request_body),
            Effect::RemoveHeader(Side::Answer, _)
            | Effect::SetHeader(Side::Answer, ..)
            | Effect::ReplaceBody {
                side: Side::Answer, ..
            } => (&mut self.answer_headers, &mut self.answer_body),
            Effect::Reply(_)
            | Effect::Emit(_)
            | Effect::Tally(_)
            | Effect::AskApproval(_)
            | Effect::Taint(..)
            | Effect::AskPins(_) => return Ok(()),
        };
        match effect {
            Effect::RemoveHeader(_, name) => headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name)),
            Effect::SetHeader(_, name, value) => {
                headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                headers.push(((*name).to_owned(), value.clone()));
            }
            Effect::ReplaceBody { len, body: new, .. } => {
                let end = (*len).min(body.len());
                body.splice(..end, new.iter().copied());
            }
            Effect::Reply(_)
            | Effect::Emit(_)
            | Effect::Tally(_)
            | Effect::AskApproval(_)
            | Effect::Taint(..)
            | Effect::AskPins(_) => {}
        }
        Ok(())
    }
}

/// Envoy's shared data as the quota uses it: a missing key is created, a
/// present one replaced only with its current CAS (or none).
#[derive(Default)]
pub struct SharedData {
    entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
}

impl Store for SharedData {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Ok(self.entries.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut entries = self.entries.borrow_mut();
        let next = entries.values().map(|(_, c)| *c).max().unwrap_or(0) + 1;
        match entries.get_mut(key) {
            Some(entry) if cas.is_some_and(|c| c != entry.1) => Err(StoreError::CasMismatch),
            Some(entry) => {
                *entry = (value.to_vec(), next);
                Ok(())
            }
            None => {
                entries.insert(key.to_owned(), (value.to_vec(), next));
                Ok(())
            }
        }
    }
}
