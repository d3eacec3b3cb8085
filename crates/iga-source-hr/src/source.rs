use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use iga_adapter::{
    DirectiveSink, DirectiveSource, Error, ErrorKind, FulfillmentReport, PollBatch, Result,
    SourceCursor, SourceMode,
};
use iga_directive::SharedClock;

use crate::docs::DocumentStore;
use crate::feed::{FeedOutcome, HrFeed};

const NS_FILES: &str = "hr.files";

/// A poll source over a directory of HR feed files (`*.csv`), processed in file-name
/// order (name them by date: `hr-2026-01-05.csv`). The cursor is the last processed
/// file; each file's outcome is stored, so polling again with an older cursor returns
/// the same directives.
pub struct HrCsvSource {
    name: String,
    dir: PathBuf,
    feed: Arc<HrFeed>,
    docs: Arc<dyn DocumentStore>,
    clock: SharedClock,
    interval: Duration,
}

impl std::fmt::Debug for HrCsvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HrCsvSource")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .finish()
    }
}

impl HrCsvSource {
    /// A source named `name` reading `dir`.
    pub fn new(
        name: impl Into<String>,
        dir: impl Into<PathBuf>,
        feed: Arc<HrFeed>,
        docs: Arc<dyn DocumentStore>,
        clock: SharedClock,
    ) -> Self {
        Self {
            name: name.into(),
            dir: dir.into(),
            feed,
            docs,
            clock,
            interval: Duration::from_secs(3600),
        }
    }

    /// The outcome of a processed file (its cancellations, events and rejections).
    pub async fn outcome(&self, file: &str) -> Result<Option<FeedOutcome>> {
        match self.docs.get(NS_FILES, file).await? {
            None => Ok(None),
            Some(d) => serde_json::from_str(&d.body)
                .map(Some)
                .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string())),
        }
    }

    fn files(&self) -> Result<Vec<String>> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("{}: {e}", self.dir.display()),
            )
        })?;
        let mut v: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".csv"))
            .collect();
        v.sort();
        Ok(v)
    }
}

#[async_trait]
impl DirectiveSource for HrCsvSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn mode(&self) -> SourceMode {
        SourceMode::Poll {
            interval: self.interval,
        }
    }

    async fn poll(&self, cursor: Option<&SourceCursor>) -> Result<PollBatch> {
        let files = self.files()?;
        let next: Vec<&String> = files
            .iter()
            .filter(|f| cursor.is_none_or(|c| f.as_str() > c.0.as_str()))
            .collect();
        let Some(file) = next.first() else {
            return Ok(PollBatch::new(Vec::new(), None));
        };
        let outcome = match self.outcome(file).await? {
            Some(o) => o,
            None => {
                let path = self.dir.join(file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Error::new(ErrorKind::Unavailable, format!("{}: {e}", path.display()))
                })?;
                let o = self.feed.ingest(file, &text, self.clock.now()).await?;
                let body = serde_json::to_string(&o).expect("outcome serializes");
                self.docs
                    .put(NS_FILES, file, &body, Some(0), self.clock.now())
                    .await?;
                o
            }
        };
        let mut b = PollBatch::new(
            outcome.directives.clone(),
            Some(SourceCursor((*file).clone())),
        );
        b.more = next.len() > 1;
        b.rejected = outcome.rejections();
        Ok(b)
    }

    async fn run_push(&self, _sink: Arc<dyn DirectiveSink>) -> Result<()> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "the HR CSV feed is a poll source",
        ))
    }

    async fn report(&self, _report: &FulfillmentReport) -> Result<()> {
        Ok(())
    }
}
