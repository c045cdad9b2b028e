//! Decision events the filter reports to the control plane (`POST
//! /v1/filter/events`). The event is a wire contract ([`crate::wire::event`],
//! shared with the control plane and the Cloud), re-exported here with the
//! filter's name for it, [`Event`]; this module adds which check a request on
//! a route is. (The wire modules are compiled into this crate, so the filter
//! may give their types methods of its own.)

use crate::route::{CheckEndpoint, Format, Route};

pub use crate::wire::event::FilterEvent as Event;
pub use crate::wire::event::*;

impl EventType {
    /// The check a request on `route` is; `None` for traffic that is not a
    /// check (health probes, `pass` routes, MCP session requests), which
    /// reports no event.
    pub fn of(route: Route) -> Option<EventType> {
        match route {
            Route::CheckApi(CheckEndpoint::Health) | Route::Pass | Route::McpSession => None,
            Route::CheckApi(CheckEndpoint::ToolCheck) | Route::Inspect(Format::Mcp) => {
                Some(EventType::ToolCheck)
            }
            _ => Some(EventType::PromptCheck),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_by_route() {
        assert_eq!(EventType::of(Route::Pass), None);
        assert_eq!(EventType::of(Route::McpSession), None);
        assert_eq!(EventType::of(Route::CheckApi(CheckEndpoint::Health)), None);
        assert_eq!(
            EventType::of(Route::CheckApi(CheckEndpoint::ToolCheck)),
            Some(EventType::ToolCheck)
        );
        assert_eq!(
            EventType::of(Route::Inspect(Format::Mcp)),
            Some(EventType::ToolCheck)
        );
        assert_eq!(
            EventType::of(Route::CheckApi(CheckEndpoint::PromptCheck)),
            Some(EventType::PromptCheck)
        );
        assert_eq!(
            EventType::of(Route::Inspect(Format::OpenAiChat)),
            Some(EventType::PromptCheck)
        );
    }
}
