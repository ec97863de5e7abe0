//! `permissions`: which kinds the instance may look up, and which action the
//! current call is allowed to perform.

use crate::bindings::enrichbox::enrichment::permissions::{Action, Host};
use crate::bindings::IndicatorKind;
use crate::state::HostState;

/// What the current call into the plugin is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// `describe`: nothing may be done.
    Nothing,
    Enrich,
    TestConnection,
}

impl Host for HostState {
    fn kind_permitted(&mut self, kind: IndicatorKind) -> bool {
        let kind = crate::convert::kind_from_wit(kind);
        self.instance.enabled_kinds.contains(&kind)
    }

    fn action_permitted(&mut self, action: Action) -> bool {
        matches!(
            (self.grant, action),
            (Grant::Enrich, Action::Enrich) | (Grant::TestConnection, Action::TestConnection)
        )
    }
}
