//! The dialect-neutral model of a GRC access request (protocols.md §6): a header
//! and line items, each line one (system, role, action, validity) with its own
//! status. Connectors act per line, never per request.

use chrono::NaiveDate;
use iga_directive::Timestamp;

/// Who the request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrcUser {
    /// The SAP user id (`ADA`).
    pub user_id: String,
    /// E-mail, if known.
    pub email: Option<String>,
}

/// One line item.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrcLine {
    /// Line id within the request (`1`, `2`, ...).
    pub line_id: String,
    /// GRC system id (`PRD_CLNT100`).
    pub system: String,
    /// Role (`Z_FI_AP_CLERK`).
    pub role: String,
    /// Action as GRC writes it (`ASSIGN`, `REMOVE`, ...).
    pub action: String,
    /// First day of validity.
    pub valid_from: Option<NaiveDate>,
    /// Last day of validity (`9999-12-31` = open-ended).
    pub valid_to: Option<NaiveDate>,
    /// Line status (`APPROVED`, `REJECTED`, `PROVISIONED`, `ERROR`, ...).
    pub status: String,
}

/// An access request with its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrcRequest {
    /// Request number (`9000001234`), the record id.
    pub req_no: String,
    /// Request status (`APPROVED`, `PARTIALLY_APPROVED`, `REJECTED`, ...).
    pub status: String,
    /// Last change, the watermark field.
    pub updated_on: Timestamp,
    /// The person.
    pub requested_for: GrcUser,
    /// Line items.
    pub lines: Vec<GrcLine>,
}

/// A record the dialect could not decode, with what could be read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Undecodable {
    /// Request number, if readable.
    pub req_no: Option<String>,
    /// Line ids, if readable (to write "needs attention" back per line).
    pub line_ids: Vec<String>,
    /// Last change, if readable (to remember it as handled).
    pub updated_on: Option<Timestamp>,
    /// Where: `9000001234/2:ValidTo`.
    pub location: String,
    /// Why.
    pub reason: String,
}

/// One fetched record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Decoded.
    Request(GrcRequest),
    /// Not decodable; reported, never dropped.
    Undecodable(Undecodable),
}

/// One page of approved requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchPage {
    /// Records in `updated_on`, `req_no` order.
    pub items: Vec<Fetched>,
    /// Opaque continuation of this listing (None: last page).
    pub next: Option<String>,
}

impl FetchPage {
    /// A page.
    pub fn new(items: Vec<Fetched>, next: Option<String>) -> Self {
        Self { items, next }
    }
}

/// What is written back for a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineStatus {
    /// The role was assigned.
    Provisioned,
    /// The role was removed (a removal line, or validity ended).
    Revoked,
    /// Provisioning failed or the line could not be processed: a person must look.
    Error,
}

impl LineStatus {
    /// The GRC vocabulary.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioned => "PROVISIONED",
            Self::Revoked => "REVOKED",
            Self::Error => "ERROR",
        }
    }
}

/// One per-line write-back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LineResult {
    /// Request number.
    pub req_no: String,
    /// Line id.
    pub line_id: String,
    /// Result.
    pub status: LineStatus,
    /// Redacted message for people.
    pub message: String,
    /// Receipt ids proving the change.
    pub receipt_ids: Vec<String>,
    /// The directive this result is about (empty for poll-time rejections).
    pub directive_id: String,
}
