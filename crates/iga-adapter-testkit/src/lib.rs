//! # iga-adapter-testkit — the conformance kit
//!
//! Every connector runs this kit from its `tests/conformance.rs`, against a mock, a
//! local real server (OpenLDAP, a SCIM server) or a sandbox tenant. The kit exercises
//! a **live target** and is exempt from semver.
//!
//! Scenarios are chosen from the adapter's [`Capabilities`]: one that does not apply
//! is reported as *not applicable*, never counted as passed. The run ends with the
//! summary line `conformance <adapter> passed=<P> not_applicable=<N> failed=<F>`.
//!
//! ```no_run
//! # async fn demo(adapter: &dyn iga_adapter::ProvisioningAdapter) {
//! use iga_adapter_testkit::{Fixture, run_conformance};
//! use iga_directive::EntitlementRef;
//! let fixture = Fixture::new()
//!     .entitlements(vec![EntitlementRef::group("conformance-a"), EntitlementRef::group("conformance-b")])
//!     .missing_entitlement(EntitlementRef::group("conformance-does-not-exist"))
//!     .canary("canary-7f3a9c");
//! let report = run_conformance("my-target", adapter, &fixture).await;
//! report.assert_ok();
//! # }
//! ```
//!
//! Run the kit on a current-thread runtime (`#[tokio::test]`): logs emitted during the
//! run are captured on that thread for the canary-secret check.
//!
//! [`Capabilities`]: iga_adapter::Capabilities
#![deny(missing_docs)]

mod capture;
mod fixture;
mod report;
pub mod scenarios;

pub use fixture::{FaultInjector, Fixture, IoProbe, ScriptedFault};
pub use report::{Report, Verdict};

use iga_adapter::ProvisioningAdapter;

/// Run every scenario against `adapter`, print one line per scenario and the summary
/// line, and return the report (call [`Report::assert_ok`] in a test).
pub async fn run_conformance(
    name: &str,
    adapter: &dyn ProvisioningAdapter,
    fixture: &Fixture,
) -> Report {
    let capture = capture::LogCapture::install();
    let cx = scenarios::Cx::new(adapter, fixture);
    let mut results = Vec::new();
    for (scenario, f) in scenarios::ALL {
        let verdict = f(&cx).await;
        println!("conformance {name} {scenario}: {verdict}");
        results.push((scenario.to_string(), verdict));
    }
    // Cleanup is best effort and never fails the run.
    cx.cleanup().await;
    let logs = capture.finish();
    let canary = scenarios::canary_check(&cx, &logs);
    println!("conformance {name} canary_secret: {canary}");
    results.push(("canary_secret".to_string(), canary));
    let report = Report::new(name, results);
    println!("{}", report.summary());
    report
}
