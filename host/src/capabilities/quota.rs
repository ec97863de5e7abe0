//! `quota`: what is left for the instance, as the host's ledger saw it when
//! the call began (after this lookup's own reservation). Read-only.

use crate::bindings::enrichbox::enrichment::quota::Host;
use crate::state::HostState;

impl Host for HostState {
    fn remaining(&mut self) -> Option<u64> {
        self.audit(
            "quota-read",
            serde_json::json!({"remaining": self.quota_remaining}),
        );
        self.quota_remaining
    }
}
