//! `quota`: what is left for the instance. Instances carry no quota yet, so
//! the truthful answer is "unlimited".

use crate::bindings::enrichbox::enrichment::quota::Host;
use crate::state::HostState;

impl Host for HostState {
    fn remaining(&mut self) -> Option<u64> {
        None
    }
}
