//! takt's own sections, `command` and `publish`: unknown keys are errors here.

use super::paths::check_ref_name;
use crate::config::{BackendKind, CommandConfig, ForgeKind, PublishConfig};
use crate::reader::{Report, Section};
use crate::schema;
use crate::suggest::did_you_mean;

pub(super) fn command(
    section: &Section<'_>,
    report: &mut Report<'_>,
    backend: BackendKind,
) -> Option<CommandConfig> {
    let run = report.non_blank(section, "run", "./scripts/agent.sh");
    section.check_unknown(report);
    if backend == BackendKind::Command && run.is_none() && section.get("run").is_none() {
        report.problem(
            "command.run",
            section.position,
            "`command.run` is required when `agent.backend` is `command`",
            "add `command:` with `  run: ./your-script.sh`",
        );
    }
    if backend != BackendKind::Command && section.position.is_some() {
        report.warn(
            "command",
            section.position,
            format!(
                "section `command` is ignored because `agent.backend` is `{}`",
                backend.as_str()
            ),
            "set `agent.backend: command` to use it, or remove it",
        );
    }
    run.map(|run| CommandConfig { run })
}

pub(super) fn publish(section: &Section<'_>, report: &mut Report<'_>) -> PublishConfig {
    let forge = match report.string(section, "forge") {
        None => ForgeKind::Local,
        Some(raw) => {
            let name = raw.trim().to_lowercase();
            let position = section.get("forge").map(|n| n.pos);
            if name == "local" {
                ForgeKind::Local
            } else if schema::FORGES.contains(&name.as_str()) {
                report.problem(
                    "publish.forge",
                    position,
                    format!("`publish.forge: {name}` is not available in this build yet"),
                    "use `forge: local`",
                );
                ForgeKind::Local
            } else {
                let fix = match did_you_mean(&name, schema::FORGES) {
                    Some(known) => format!("did you mean `{known}`?"),
                    None => "use `forge: local`".to_owned(),
                };
                report.problem(
                    "publish.forge",
                    position,
                    format!("`publish.forge` {raw:?} is not a known forge"),
                    fix,
                );
                ForgeKind::Local
            }
        }
    };
    let auto_merge = report.boolean(section, "auto_merge", false);
    let branch_prefix = report
        .non_blank(section, "branch_prefix", "takt/")
        .inspect(|prefix| check_ref_name(section, report, "branch_prefix", prefix))
        .unwrap_or_else(|| "takt/".to_owned());
    section.check_unknown(report);
    PublishConfig {
        forge,
        auto_merge,
        branch_prefix,
    }
}
