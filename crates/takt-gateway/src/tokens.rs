//! Run tokens: random, one per run, valid only while the run lives.

use std::collections::HashMap;
use std::sync::RwLock;

use rand::{RngCore, SeedableRng};

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub run_id: String,
    pub task_id: String,
}

/// Issued tokens. The gateway is the only place that can turn a token into a run.
#[derive(Debug, Default)]
pub struct Tokens {
    by_token: RwLock<HashMap<String, Grant>>,
}

impl Tokens {
    /// A fresh token for `run_id`; an earlier token of the same run is revoked.
    pub fn grant(&self, run_id: &str, task_id: &str) -> String {
        let mut bytes = [0u8; 24];
        // StdRng is a CSPRNG; seeding it from the OS per token keeps tokens unguessable.
        rand::rngs::StdRng::from_os_rng().fill_bytes(&mut bytes);
        let token = format!("takt-run-{}", takt_core::journal::hex(&bytes));
        if let Ok(mut map) = self.by_token.write() {
            map.retain(|_, grant| grant.run_id != run_id);
            map.insert(
                token.clone(),
                Grant {
                    run_id: run_id.to_owned(),
                    task_id: task_id.to_owned(),
                },
            );
        }
        token
    }

    /// Revokes every token of `run_id`.
    pub fn revoke(&self, run_id: &str) {
        if let Ok(mut map) = self.by_token.write() {
            map.retain(|_, grant| grant.run_id != run_id);
        }
    }

    pub fn lookup(&self, token: &str) -> Option<Grant> {
        self.by_token.read().ok()?.get(token).cloned()
    }
}
