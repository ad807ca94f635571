//! `vigil serve` and `vigil token`: open the operational store, make sure an admin can get in,
//! and run the service until SIGINT or SIGTERM.

use anyhow::{bail, Context, Result};
use std::process::ExitCode;
use std::sync::Arc;

use vigil_analysis::Engine;
use vigil_server::sqlite::RecallSetup;
use vigil_server::{issue_token, AppState, Role, Stores};
use vigil_store::TextEmbedder;

use crate::config::{Config, LlmMode};

/// `vigil token` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once and never stored.
    Create {
        /// What the token is for (at most 100 characters, no control characters).
        #[arg(long)]
        name: String,
        /// admin, security, developer, connector or auditor.
        #[arg(long)]
        role: String,
    },
    /// List tokens (ids, names, roles; never secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// The token's id, as `vigil token list` shows it.
        id: String,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// How the service consults memory: `[memory]` thresholds, the severity bands, and the
/// embeddings model unless `[llm]` turns models off (with `mode = "auto"` a missing model is a
/// warning, and memory then matches without similarity).
fn recall_setup(config: &Config, with_embedder: bool) -> Result<RecallSetup> {
    let llm = &config.llm;
    let embedder: Option<Arc<dyn TextEmbedder>> =
        if !with_embedder || llm.mode == LlmMode::Off || !llm.embeddings {
            None
        } else {
            match crate::store::embedder(config) {
                Ok(e) => Some(Arc::new(e)),
                Err(err) if llm.mode == LlmMode::Auto => {
                    eprintln!(
                        "warning: memory matches without an embedder ({}); decisions apply \
                         by finding and by component only",
                        crate::said(&err)
                    );
                    None
                }
                Err(err) => return Err(err),
            }
        };
    Ok(recall_with(config, embedder))
}

/// `[memory]` thresholds and the severity bands, with `embedder`.
pub(crate) fn recall_with(config: &Config, embedder: Option<Arc<dyn TextEmbedder>>) -> RecallSetup {
    RecallSetup {
        embedder,
        config: config.memory.clone(),
        bands: config.scoring.bands.clone(),
    }
}

async fn open_stores(config: &Config, with_embedder: bool) -> Result<Stores> {
    let busy_timeout = std::time::Duration::from_millis(config.store.busy_timeout_ms);
    let recall = recall_setup(config, with_embedder)?;
    vigil_server::sqlite::open_stores_with(&config.store.data_dir, busy_timeout, recall)
        .await
        .with_context(|| {
            format!(
                "cannot open the operational store in {}",
                config.store.data_dir.display()
            )
        })
}

/// Runs the service.
pub fn serve(config: &Config, engine: Engine) -> Result<ExitCode> {
    // Unusable TLS files stop the start before a token is created or anything is printed.
    if let (Some(cert), Some(key)) = (&config.server.tls_cert, &config.server.tls_key) {
        vigil_server::tls::server_config(cert, key).context("[server] tls_cert and tls_key")?;
    }
    runtime()?.block_on(async {
        let stores = open_stores(config, true).await?;
        first_admin_token(&stores).await?;
        let state = AppState::new(
            config.server.clone(),
            config.connectors.clone(),
            Arc::new(engine),
            stores,
        )?;
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let scheme = if config.server.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        eprintln!("vigil: serving on {scheme}://{}", listener.local_addr()?);
        vigil_server::serve(state, listener, vigil_server::shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
    })
}

/// When no admin token is active (the first start, even after `vigil token create` made tokens
/// of other roles, or once every admin token is revoked), creates one and prints it once.
async fn first_admin_token(stores: &Stores) -> Result<()> {
    let tokens = stores.tokens.list().await?;
    if tokens
        .iter()
        .any(|t| t.role == Role::Admin && t.revoked_ms.is_none())
    {
        return Ok(());
    }
    let issued = issue_token("initial admin", Role::Admin, vigil_server::app::now_ms())?;
    stores.tokens.insert(&issued.record).await?;
    println!(
        "vigil: no active admin token: created one (shown once, store it now):\n{}",
        issued.secret
    );
    Ok(())
}

/// A token's name, checked as the service checks it (see [`vigil_server::auth::token_name`]).
fn token_name(name: &str) -> Result<&str> {
    Ok(vigil_server::auth::token_name(name)?)
}

/// `text` with control characters escaped (names stored before they were refused).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Runs a `vigil token` subcommand.
pub fn token(config: &Config, command: TokenCommand) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let stores = open_stores(config, false).await?;
        match command {
            TokenCommand::Create { name, role } => {
                let role: Role = role.parse()?;
                let name = token_name(&name)?;
                let issued = issue_token(name, role, vigil_server::app::now_ms())?;
                stores.tokens.insert(&issued.record).await?;
                eprintln!(
                    "created token {} ({}); the secret below is shown once:",
                    issued.record.id,
                    role.as_str()
                );
                println!("{}", issued.secret);
            }
            TokenCommand::List => {
                for t in stores.tokens.list().await? {
                    let state = if t.revoked_ms.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<14} {:<10} {:<8} {}",
                        t.id,
                        t.role.as_str(),
                        state,
                        printable(&t.name)
                    );
                }
            }
            TokenCommand::Revoke { id } => {
                if !stores
                    .tokens
                    .revoke(&id, vigil_server::app::now_ms())
                    .await?
                {
                    bail!("no active token `{id}`");
                }
                eprintln!("revoked token {id}");
            }
        }
        Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_names_are_short_and_printable() {
        assert_eq!(token_name("  ci ").unwrap(), "ci");
        assert!(token_name(" ").is_err());
        assert_eq!(token_name(&"é".repeat(100)).unwrap().chars().count(), 100);
        let long = token_name(&"a".repeat(101)).unwrap_err().to_string();
        assert!(long.contains("at most 100 characters"), "{long}");
        let esc = token_name("ci\x1b[31mred").unwrap_err().to_string();
        assert!(
            esc.contains("control characters") && esc.contains("\\u{1b}"),
            "{esc}"
        );
        assert_eq!(printable("a\x1b[2Jb"), "a\\u{1b}[2Jb");
    }
}
