//! A faithful in-process Microsoft Graph mock (feature `test-support`).
//!
//! An axum server on a random loopback port that serves the token endpoint and the
//! Graph v1.0 surface this connector uses, with the rules of protocols.md §1:
//!
//! - OAuth2 client credentials (client secret or an RS256 client assertion checked
//!   against a registered public key, `aud`, `iss`/`sub`, `exp`, `x5t`); Graph calls
//!   without a token it issued get 401 `InvalidAuthenticationToken`.
//! - `$batch`: at most 20 requests (400 above), ids required and unique
//!   case-insensitively (400), `Content-Type` header required with a body (400),
//!   `dependsOn` to ids of the batch only (400), 424 for dependents of a failure,
//!   responses in a seeded random order, outer 200 whatever the inner results,
//!   inner 429s with `Retry-After` on demand.
//! - The error bodies of the real service: already-member 400 `Request_BadRequest`,
//!   not-member 404 `Request_ResourceNotFound`, `RoleAssignmentExists`, duplicate
//!   app role assignments, duplicate UPNs; unknown user properties are 400.
//! - Paging with `@odata.nextLink` (`$top` max 999), `$filter` with `eq` clauses
//!   only (anything else is 400 `Request_UnsupportedQuery`), `$select`.
//! - Delta queries with opaque tokens, multi-page group splitting, `@removed`,
//!   `$deltatoken=latest`, expired tokens and 410 with `Location` on demand.
//! - Access-package requests that move `submitted → delivering → delivered` one
//!   step per observation; conditional-access `PATCH` that replaces the whole
//!   `conditions` object (as Graph does for complex properties).
//! - Counters of HTTP calls per path and a log of every request (inner `$batch`
//!   requests included, flagged) with decoded path, query and body.

mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub use state::Recorded;
use state::State;

/// The Graph mock. Dropping it stops the server.
pub struct GraphMock {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for GraphMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphMock")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for GraphMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Tenant id the mock serves.
pub const TENANT: &str = "contoso-tenant";
/// Client id the mock accepts.
pub const CLIENT_ID: &str = "iga-app";
/// UPN domain of seeded users.
pub const DOMAIN: &str = "contoso.example";

async fn serve(
    AxState(st): AxState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = st
        .lock()
        .expect("mock state")
        .handle_http(&method, &uri, &headers, &body);
    let mut resp = match &r.body {
        Some(b) => (
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            b.to_string(),
        )
            .into_response(),
        None => StatusCode::from_u16(r.status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
    };
    for (k, v) in &r.headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

impl GraphMock {
    /// Start on a random loopback port. Panics (loudly) when it cannot bind.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("Graph mock: cannot bind a loopback port");
        let addr = listener.local_addr().expect("Graph mock: local address");
        let state = Arc::new(Mutex::new(State::new(format!("http://{addr}"))));
        let app = Router::new().fallback(serve).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("Graph mock: server failed");
        });
        Self { addr, state, task }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("mock state")
    }

    /// `http://127.0.0.1:<port>/v1.0`.
    pub fn graph_base(&self) -> String {
        format!("http://{}/v1.0", self.addr)
    }

    /// `http://127.0.0.1:<port>` (token authority).
    pub fn authority(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Accept this client secret for [`CLIENT_ID`].
    pub fn set_client_secret(&self, secret: &str) {
        self.st().client_secret = Some(secret.to_string());
    }

    /// Accept RS256 client assertions signed by this RSA public key (ring's
    /// `RsaKeyPair::public().as_ref()` form) with this SHA-1 thumbprint (hex).
    pub fn register_certificate(&self, public_key_der: &[u8], thumbprint_hex: &str) {
        let mut s = self.st();
        s.cert_public_key = Some(public_key_der.to_vec());
        s.cert_thumbprint_hex = Some(thumbprint_hex.to_ascii_lowercase());
    }

    /// Lifetime of issued tokens (`expires_in`, default 3600 s).
    pub fn set_token_lifetime(&self, secs: u64) {
        self.st().token_lifetime = secs;
    }

    /// Forget every issued token (their next use gets 401).
    pub fn revoke_tokens(&self) {
        self.st().tokens.clear();
    }

    /// Token requests served successfully.
    pub fn token_requests(&self) -> u64 {
        self.st().token_requests
    }

    /// HTTP calls that reached `path` (e.g. `/v1.0/$batch`), any method.
    pub fn calls(&self, path: &str) -> u64 {
        self.st().calls.get(path).copied().unwrap_or(0)
    }

    /// HTTP calls per path.
    pub fn calls_by_path(&self) -> BTreeMap<String, u64> {
        self.st().calls.clone()
    }

    /// HTTP calls to Graph (token endpoint excluded).
    pub fn graph_calls(&self) -> u64 {
        self.st()
            .calls
            .iter()
            .filter(|(k, _)| k.starts_with("/v1.0"))
            .map(|(_, v)| v)
            .sum()
    }

    /// Every request seen, token requests (form as a JSON object) and Graph requests
    /// (inner `$batch` requests included, flagged).
    pub fn requests(&self) -> Vec<Recorded> {
        self.st().recorded.clone()
    }

    /// Forget recorded requests and call counters.
    pub fn clear_log(&self) {
        let mut s = self.st();
        s.recorded.clear();
        s.calls.clear();
    }

    /// The next `n` Graph HTTP calls (outer) fail with `status` (and `Retry-After`
    /// when given). 429s carry the throttle headers.
    pub fn fail_next(&self, status: u16, retry_after: Option<Duration>) {
        self.st().faults.push_back((status, retry_after));
    }

    /// The next `n` inner `$batch` requests come back 429 with `Retry-After: secs`.
    pub fn throttle_next_inner(&self, n: u32, secs: u64) {
        let mut s = self.st();
        s.throttle_next += n;
        s.throttle_secs = secs;
    }

    /// From now on, each inner `$batch` request is throttled (429, `Retry-After:
    /// secs`) with probability `p` (seeded, reproducible).
    pub fn throttle_inner_fraction(&self, p: f64, secs: u64) {
        let mut s = self.st();
        s.throttle_fraction = p;
        s.throttle_secs = secs;
    }

    /// Inner `$batch` requests answered 429 so far.
    pub fn inner_throttled(&self) -> u64 {
        self.st().inner_throttled
    }

    /// Seed for the response shuffling and throttling.
    pub fn seed(&self, seed: u64) {
        self.st().reseed(seed);
    }

    /// Create a user; returns its id.
    pub fn seed_user(&self, login: &str, employee_id: &str) -> String {
        self.st().seed_user(login, employee_id)
    }

    /// A user object (None when absent).
    pub fn user(&self, id: &str) -> Option<Value> {
        self.st().users.get(id).cloned()
    }

    /// The id of the user with this UPN.
    pub fn user_id(&self, upn: &str) -> Option<String> {
        self.st().find_user(upn)
    }

    /// Create a security group; returns its id.
    pub fn seed_group(&self, name: &str) -> String {
        self.st().seed_group(name)
    }

    /// Make `member` a member of `group` (no checks).
    pub fn seed_member(&self, group: &str, member: &str) {
        self.st().add_member_raw(group, member);
    }

    /// Current members of a group.
    pub fn members(&self, group: &str) -> Vec<String> {
        self.st()
            .groups
            .get(group)
            .map(|g| g.members.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Current owners of a group.
    pub fn owners(&self, group: &str) -> Vec<String> {
        self.st()
            .groups
            .get(group)
            .map(|g| g.owners.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Effective membership changes per `(group, member)` (adds and removes that
    /// changed state). Proves nothing took effect twice.
    pub fn membership_changes(&self) -> BTreeMap<(String, String), u32> {
        self.st().membership_changes.clone()
    }

    /// Create an administrative unit; returns its id.
    pub fn seed_administrative_unit(&self, name: &str) -> String {
        self.st().seed_au(name)
    }

    /// Members of an administrative unit.
    pub fn au_members(&self, au: &str) -> Vec<String> {
        self.st()
            .aus
            .get(au)
            .map(|a| a.1.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Create a service principal with app roles; returns (sp id, role ids).
    pub fn seed_service_principal(&self, name: &str, roles: &[&str]) -> (String, Vec<String>) {
        self.st().seed_sp(name, roles)
    }

    /// A service principal (`{id, appId, displayName, appRoles}`).
    pub fn service_principal(&self, id: &str) -> Option<Value> {
        self.st().sps.get(id).cloned()
    }

    /// App role assignments (`{id, principalId, resourceId, appRoleId}`).
    pub fn app_role_assignments(&self) -> Vec<Value> {
        self.st().app_roles.values().cloned().collect()
    }

    /// Create a directory role definition; returns its id.
    pub fn seed_role_definition(&self, name: &str) -> String {
        self.st().seed_role_definition(name)
    }

    /// Permanent directory role assignments.
    pub fn role_assignments(&self) -> Vec<Value> {
        self.st().role_assignments.values().cloned().collect()
    }

    /// PIM schedules of a surface (`roleEligibility`, `roleAssignment`,
    /// `groupEligibility`, `groupAssignment`).
    pub fn pim_schedules(&self, surface: &str) -> Vec<Value> {
        self.st()
            .pim_schedules
            .iter()
            .filter(|((s, _), _)| s == surface)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Create a subscribed SKU with service plans; returns (sku id, plan ids).
    pub fn seed_sku(&self, part: &str, plans: &[&str]) -> (String, Vec<String>) {
        self.st().seed_sku(part, plans)
    }

    /// Create a conditional-access policy (with applications, client app types and
    /// user lists); returns its id.
    pub fn seed_ca_policy(&self, name: &str) -> String {
        self.st().seed_ca(name)
    }

    /// A conditional-access policy.
    pub fn ca_policy(&self, id: &str) -> Option<Value> {
        self.st().ca.get(id).cloned()
    }

    /// Change a CA policy behind the connector's back (`f` edits the JSON).
    pub fn edit_ca_policy(&self, id: &str, f: impl FnOnce(&mut Value)) {
        if let Some(p) = self.st().ca.get_mut(id) {
            f(p);
        }
    }

    /// Create an access package and an assignment policy; returns (package, policy).
    /// With `approval`, requests wait in `pendingApproval` until [`Self::approve_all`].
    pub fn seed_access_package(&self, name: &str, approval: bool) -> (String, String) {
        self.st().seed_access_package(name, approval)
    }

    /// Approve every request waiting in `pendingApproval`.
    pub fn approve_all(&self) {
        self.st().approve_all();
    }

    /// Delivered access-package assignments.
    pub fn access_package_assignments(&self) -> Vec<Value> {
        self.st().ap_assignments.values().cloned().collect()
    }

    /// Access-package assignment requests.
    pub fn access_package_requests(&self) -> Vec<Value> {
        self.st().ap_requests.values().cloned().collect()
    }

    /// Page size of delta responses (default 3 objects or members per page).
    pub fn set_delta_page_size(&self, n: usize) {
        self.st().delta_page = n.max(1);
    }

    /// Every delta token issued so far becomes invalid (`syncStateNotFound`).
    pub fn expire_delta_tokens(&self) {
        let mut s = self.st();
        s.seq += 1;
        s.delta_min_valid = s.seq;
    }

    /// The next delta call answers 410 Gone with a `Location` to a fresh start.
    pub fn delta_gone_once(&self) {
        self.st().delta_gone = true;
    }

    /// Soft-delete a user behind the connector's back.
    pub fn delete_user(&self, id: &str) {
        self.st().delete_user(id);
    }
}
