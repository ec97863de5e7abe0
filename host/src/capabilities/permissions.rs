//! `permissions`: which kinds the instance may look up, and which action the
//! current call is allowed to perform.

use crate::bindings::IndicatorKind;
use crate::bindings::enrichbox::enrichment::permissions::{Action, Host};
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
        let granted = self.instance.enabled_kinds.contains(&kind);
        self.audit(
            "permission-check",
            serde_json::json!({"kind": kind.as_str(), "granted": granted}),
        );
        granted
    }

    fn action_permitted(&mut self, action: Action) -> bool {
        let granted = matches!(
            (self.grant, action),
            (Grant::Enrich, Action::Enrich) | (Grant::TestConnection, Action::TestConnection)
        );
        let name = match action {
            Action::Enrich => "enrich",
            Action::TestConnection => "test-connection",
        };
        self.audit(
            "permission-check",
            serde_json::json!({"action": name, "granted": granted}),
        );
        granted
    }
}
