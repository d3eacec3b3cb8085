//! Delta queries for users and groups (protocols §1.10).
//!
//! [`EntraAdapter::delta_sync`] follows `@odata.nextLink` until a page carries the
//! `@odata.deltaLink` and merges what it saw: group members split across pages are
//! merged, not overwritten. The returned `delta_link` is the cursor the embedder
//! persists (e.g. with the store's source-cursor API, `LedgerStore::set_cursor`) and
//! passes back next time. A `410 Gone` (with a `Location` to restart from) or an
//! expired token (`syncStateNotFound`) restarts from scratch and says so with
//! `full_resync = true`: the caller must then treat objects it did not see as gone.

use std::collections::BTreeMap;

use http::Method;
use iga_adapter::{Error, ErrorKind, Result};
use serde_json::Value;

use crate::KIND;
use crate::adapter::{EntraAdapter, path, str_of};

/// Users or groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaKind {
    /// `/users/delta`.
    Users,
    /// `/groups/delta` (with `members@delta`).
    Groups,
}

impl DeltaKind {
    fn command(self) -> &'static str {
        match self {
            Self::Users => "user.delta",
            Self::Groups => "group.delta",
        }
    }
}

/// Why an object is reported removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// `changed`: soft-deleted, restorable for 30 days.
    SoftDeleted,
    /// `deleted`: permanently gone.
    Deleted,
}

fn removed(v: &Value) -> Option<Removed> {
    let r = v.get("@removed")?;
    Some(match str_of(r, "reason") {
        Some("changed") => Removed::SoftDeleted,
        _ => Removed::Deleted,
    })
}

/// One object that changed.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct DeltaChange {
    /// Object id.
    pub id: String,
    /// Set when the object was removed.
    pub removed: Option<Removed>,
    /// The properties reported (merged across pages and replays, later wins).
    pub properties: serde_json::Map<String, Value>,
    /// Members added (groups).
    pub members_added: Vec<String>,
    /// Members removed (groups).
    pub members_removed: Vec<String>,
}

/// The result of one delta round.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct DeltaSync {
    /// Changes by object id, in id order.
    pub changes: Vec<DeltaChange>,
    /// The link to pass next time (persist it).
    pub delta_link: String,
    /// True when the service forced a restart (410 or expired token): `changes` is
    /// then the full current state.
    pub full_resync: bool,
    /// Pages read.
    pub pages: u32,
}

impl EntraAdapter {
    /// Run one delta round: from the start (`cursor = None`), from a persisted
    /// `delta_link`, or "from now" (`latest = true`: only a delta link, no data).
    pub async fn delta_sync(
        &self,
        kind: DeltaKind,
        cursor: Option<&str>,
        latest: bool,
    ) -> Result<DeltaSync> {
        let initial = if latest {
            path(
                match kind {
                    DeltaKind::Users => "user.delta_latest",
                    DeltaKind::Groups => "group.delta_latest",
                },
                &[],
            )?
        } else {
            path(kind.command(), &[])?
        };
        let mut link = cursor.map(str::to_string).unwrap_or(initial.clone());
        let mut out = DeltaSync::default();
        let mut merged: BTreeMap<String, DeltaChange> = BTreeMap::new();
        let mut restarts = 0;
        loop {
            let r = self.client().send(Method::GET, &link, None, &[]).await?;
            if !r.ok() {
                let g = r.error();
                if g.needs_resync() && restarts < 2 {
                    restarts += 1;
                    out.full_resync = true;
                    merged.clear();
                    link = r
                        .headers
                        .get(http::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                        .unwrap_or_else(|| initial.clone());
                    tracing::info!(status = g.status, "delta token rejected; full resync");
                    continue;
                }
                return Err(g.to_error().with_operation("delta"));
            }
            out.pages += 1;
            let body = r.body.unwrap_or_default();
            for item in body
                .get("value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(id) = str_of(item, "id") else {
                    continue;
                };
                let c = merged.entry(id.to_string()).or_insert_with(|| DeltaChange {
                    id: id.to_string(),
                    ..Default::default()
                });
                c.removed = removed(item);
                if let Some(m) = item.as_object() {
                    for (k, v) in m {
                        if k == "members@delta" {
                            for mem in v.as_array().into_iter().flatten() {
                                let Some(mid) = str_of(mem, "id") else {
                                    continue;
                                };
                                let (to, from) = if removed(mem).is_some() {
                                    (&mut c.members_removed, &mut c.members_added)
                                } else {
                                    (&mut c.members_added, &mut c.members_removed)
                                };
                                from.retain(|x| x != mid);
                                if !to.iter().any(|x| x == mid) {
                                    to.push(mid.to_string());
                                }
                            }
                        } else if k != "id" && k != "@removed" {
                            c.properties.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            match (
                str_of(&body, "@odata.nextLink"),
                str_of(&body, "@odata.deltaLink"),
            ) {
                (Some(n), _) => link = n.to_string(),
                (None, Some(d)) => {
                    out.delta_link = d.to_string();
                    break;
                }
                (None, None) => {
                    return Err(Error::new(
                        ErrorKind::Unexpected,
                        "delta page has neither @odata.nextLink nor @odata.deltaLink",
                    )
                    .with_connector(KIND));
                }
            }
        }
        out.changes = merged.into_values().collect();
        Ok(out)
    }
}
