//! One module per subcommand; [`dispatch`] routes to them.

mod audit;
mod cost;
mod demo;
mod doctor;
mod evidence;
mod init;
mod operate;
mod output;
mod remote;
mod run;
mod status;
mod task;

use anyhow::Result;
use takt_core::OperatorCommand;

use crate::args::{AuditCommand, Cli, Commands, ReviewCommand, TaskCommand};
use crate::exit::Code;

pub async fn dispatch(cli: Cli) -> Result<Code> {
    let workflow = cli.workflow.as_deref();
    let json = cli.json;
    match cli.command {
        Commands::Init(args) => init::run(workflow, &args),
        Commands::Run(args) => {
            run::run(
                args.path.as_deref().or(workflow),
                args.once,
                args.port,
                json,
            )
            .await
        }
        Commands::Task(TaskCommand::Add(args)) => task::add(workflow, args, json).await,
        Commands::Task(TaskCommand::List(args)) => task::list(workflow, &args, json).await,
        Commands::Task(TaskCommand::Show { id }) => task::show(workflow, &id, json).await,
        Commands::Task(TaskCommand::Events { id }) => task::events(workflow, &id, json).await,
        Commands::Task(TaskCommand::Cancel { id }) => {
            operate::send(
                workflow,
                OperatorCommand::Cancel {
                    task: id,
                    by: operator(),
                },
                json,
            )
            .await
        }
        Commands::Task(TaskCommand::Retry { id }) => {
            operate::send(
                workflow,
                OperatorCommand::Retry {
                    task: id,
                    by: operator(),
                },
                json,
            )
            .await
        }
        Commands::Review(ReviewCommand::Approve { id, comment }) => {
            let command = OperatorCommand::Approve {
                task: id,
                by: operator(),
                comment,
            };
            operate::send(workflow, command, json).await
        }
        Commands::Review(ReviewCommand::Reject { id, comment }) => {
            let command = OperatorCommand::Reject {
                task: id,
                by: operator(),
                comment,
            };
            operate::send(workflow, command, json).await
        }
        Commands::Answer(args) => {
            let command = OperatorCommand::Answer {
                task: args.id,
                by: operator(),
                text: args.text,
            };
            operate::send(workflow, command, json).await
        }
        Commands::Status(args) => match (args.remote.as_deref(), args.watch) {
            (Some(url), watch) => status::remote(url, watch, json, args.interval_ms).await,
            (None, true) => status::watch(workflow, args.interval_ms).await,
            (None, false) => status::run(workflow, json).await,
        },
        Commands::Cost(args) => cost::run(workflow, args.by, json).await,
        Commands::Doctor => doctor::run(workflow, json).await,
        Commands::Evidence(args) => evidence::run(workflow, &args, json).await,
        Commands::Audit(AuditCommand::Verify { id }) => {
            audit::verify(workflow, id.as_deref(), json).await
        }
        Commands::Demo(args) => demo::run(args.dir, json).await,
        Commands::MockModel(args) => {
            let mut config = match args.scenarios {
                Some(dir) => takt_mock_model::MockConfig::with_dir(dir),
                None => takt_mock_model::MockConfig::default(),
            };
            config.port = args.port;
            config.log_path = args.log;
            takt_mock_model::serve_forever(config).await?;
            Ok(Code::Success)
        }
    }
}

/// Who is acting, for the journal: `$TAKT_OPERATOR`, else the login name.
pub(crate) fn operator() -> String {
    ["TAKT_OPERATOR", "USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .unwrap_or_else(|| "operator".into())
}
