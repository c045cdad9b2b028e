//! `kalguard-cloud`: the self-hosted KalGuard Cloud (API + dashboard) and its admin CLI.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kalguard_cloud::config::{Config, DatabaseArgs};
use kalguard_cloud::plan::Plan;
use kalguard_cloud::store::admin_log::{self, Action, Actor};
use kalguard_cloud::store::orgs;
use kalguard_cloud::Db;

#[derive(Parser)]
#[command(
    name = "kalguard-cloud",
    version,
    about = "Self-hosted KalGuard Cloud: API for sidecars and dashboard"
)]
struct Cli {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and dashboard (migrates the database first).
    Serve(Box<Config>),
    /// Apply database migrations and exit.
    Migrate,
    /// Organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Agent access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint an agent token for the organisation of an API key; prints the token.
    Create {
        /// An API key of the organisation (as `org create` printed it).
        #[arg(long, env = "KALGUARD_API_KEY", hide_env_values = true)]
        api_key: String,
        /// The agent ID (the token's `sub`).
        #[arg(long)]
        agent: String,
        /// Comma-separated capabilities.
        #[arg(long, default_value = "prompt:send,tool:execute")]
        capabilities: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 30 * 86_400)]
        ttl_secs: i64,
        /// A name shown in the dashboard.
        #[arg(long, default_value = "cli token")]
        name: String,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organisation and its owner; prints the first API key (shown once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// The owner's password (10 characters or more).
        #[arg(long, env = "KALGUARD_CLOUD_ORG_PASSWORD", hide_env_values = true)]
        password: String,
        /// Plan to start on.
        #[arg(long, default_value = "free", value_parser = kalguard_cloud::app::parse_plan)]
        plan: Plan,
    },
    /// Set an organisation's plan by hand (without Stripe).
    SetPlan {
        #[arg(long)]
        org: String,
        #[arg(long, value_parser = kalguard_cloud::app::parse_plan)]
        plan: Plan,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KALGUARD_CLOUD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kalguard-cloud: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn open(args: &DatabaseArgs) -> Result<Db, String> {
    let url = args
        .url()
        .map_err(|e| format!("cannot create data dir {}: {e}", args.data_dir.display()))?;
    let db = Db::connect(&url).await.map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    Ok(db)
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(config) => {
            let db = open(&cli.database).await?;
            tracing::info!(backend = ?db.backend, "database ready");
            kalguard_cloud::app::serve(db, *config)
                .await
                .map_err(|e| format!("server failed: {e}"))
        }
        Command::Migrate => {
            let db = open(&cli.database).await?;
            println!("migrations applied ({:?})", db.backend);
            Ok(())
        }
        Command::Org(OrgCommand::Create {
            name,
            email,
            password,
            plan,
        }) => {
            if let Some(why) = kalguard_cloud::web::password::problem(&password, &email) {
                return Err(format!("--password: {why}"));
            }
            let db = open(&cli.database).await?;
            let hash = kalguard_cloud::web::auth::hash_password(password, 19_456)
                .await
                .map_err(|e| e.message)?;
            let created = orgs::create_with_owner(&db, &name, &email.to_lowercase(), &hash)
                .await
                .map_err(|e| e.to_string())?;
            if plan != Plan::Free {
                orgs::set_plan(&db, &created.org_id, plan)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            admin_log::append(
                &db,
                &created.org_id,
                &Actor::cli(),
                Action::OrgCreated,
                &name,
                &format!("owner {email}, plan {plan}"),
            )
            .await
            .map_err(|e| e.to_string())?;
            eprintln!(
                "created organisation {} ({plan}) with owner {email}",
                created.org_id
            );
            println!("{}", created.api_key);
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            api_key,
            agent,
            capabilities,
            ttl_secs,
            name,
        }) => {
            if agent.is_empty() || agent.len() > 128 {
                return Err("--agent must be 1-128 characters".into());
            }
            if let Some(why) = kalguard_cloud::agent_id::problem(&agent) {
                return Err(format!("--agent {why}"));
            }
            let db = open(&cli.database).await?;
            let owner = kalguard_cloud::store::keys::authenticate(&db, &api_key)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("--api-key is not an active key of any organisation")?;
            let org = orgs::get(&db, &owner.org_id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the key's organisation no longer exists")?;
            let new = kalguard_cloud::store::tokens::NewToken {
                name,
                agent_id: agent,
                capabilities: capabilities
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                ttl_secs,
            };
            let token = kalguard_cloud::store::tokens::create(&db, &org, &new)
                .await
                .map_err(|e| e.to_string())?;
            admin_log::append(
                &db,
                &org.id,
                &Actor::cli(),
                Action::TokenCreated,
                &new.name,
                &format!(
                    "agent {}; capabilities {}",
                    new.agent_id,
                    new.capabilities.join(", ")
                ),
            )
            .await
            .map_err(|e| e.to_string())?;
            println!("{token}");
            Ok(())
        }
        Command::Org(OrgCommand::SetPlan { org, plan }) => {
            let db = open(&cli.database).await?;
            match orgs::set_plan(&db, &org, plan)
                .await
                .map_err(|e| e.to_string())?
            {
                true => {
                    println!("{org} is now on {plan}");
                    Ok(())
                }
                false => Err(format!("no organisation {org}")),
            }
        }
    }
}
