//! The `inbox` directive source of `iga run`: each new directive file in a directory is
//! submitted once (renamed `*.done`); a bad one is renamed `*.rejected` and its reason
//! written beside it (`*.rejected.reason`), so nothing is lost and nothing half-applied.

use crate::app::{App, CliError};
use crate::config::SourceConfig;

/// Submit every new file of every configured inbox; returns how many files were taken.
pub async fn poll(app: &App) -> Result<usize, CliError> {
    let mut n = 0;
    for s in &app.config.sources {
        let SourceConfig::Inbox { dir } = s else {
            continue;
        };
        let dir = app.config.resolve(dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| CliError::failed(format!("inbox {}: {e}", dir.display())))?;
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| CliError::failed(format!("inbox {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
            })
            .collect();
        files.sort();
        for p in files {
            let res = match crate::directives::read(&p) {
                Ok(f) => app
                    .orch
                    .submit(f.directives.clone())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let mut done = p.clone().into_os_string();
            match res {
                Ok(()) => done.push(".done"),
                Err(reason) => {
                    done.push(".rejected");
                    let mut why = done.clone();
                    why.push(".reason");
                    let _ = std::fs::write(&why, format!("{reason}\n"));
                    tracing::warn!(file = %p.display(), %reason, "directive file rejected");
                }
            }
            std::fs::rename(&p, &done)
                .map_err(|e| CliError::failed(format!("{}: {e}", p.display())))?;
            n += 1;
        }
    }
    Ok(n)
}
