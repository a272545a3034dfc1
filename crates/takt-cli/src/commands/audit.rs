//! `takt audit verify`: the journal's hash chain and every artifact's content hash.

use std::path::Path;

use anyhow::Result;

use super::output::{self, outln};
use crate::exit::Code;
use crate::project::Project;

pub async fn verify(workflow: Option<&Path>, json: bool) -> Result<Code> {
    let project = Project::locate(workflow)?;
    let store = project.store().await?;
    let chain = store.verify_journal().await?;
    let bad_artifacts = store.verify_artifacts().await?;
    let intact = chain.first_broken.is_none() && bad_artifacts.is_empty();
    if json {
        output::json(&serde_json::json!({
            "intact": intact,
            "entries": chain.entries,
            "first_broken": chain.first_broken.as_ref().map(|broken| serde_json::json!({
                "seq": broken.seq(),
                "problem": broken.to_string(),
            })),
            "corrupt_artifacts": bad_artifacts,
        }))?;
    } else {
        match &chain.first_broken {
            None => outln!("journal: {} entries, chain intact", chain.entries),
            Some(broken) => outln!("journal: BROKEN at entry {}: {broken}", broken.seq()),
        }
        if bad_artifacts.is_empty() {
            outln!("artifacts: all match their hashes");
        } else {
            for hash in &bad_artifacts {
                outln!("artifact {hash}: content does not match its hash");
            }
        }
    }
    Ok(if intact {
        Code::Success
    } else {
        Code::Tampered
    })
}
