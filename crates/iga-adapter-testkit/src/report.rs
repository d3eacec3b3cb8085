use std::fmt;

/// The result of one scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every assertion held.
    Passed,
    /// The adapter does not claim what the scenario needs (or the fixture lacks it).
    NotApplicable(String),
    /// An assertion failed.
    Failed(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Passed => f.write_str("passed"),
            Self::NotApplicable(why) => write!(f, "not applicable ({why})"),
            Self::Failed(why) => write!(f, "FAILED: {why}"),
        }
    }
}

/// The outcome of a conformance run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Adapter name as given to the run.
    pub adapter: String,
    /// Scenario name and verdict, in run order.
    pub results: Vec<(String, Verdict)>,
}

impl Report {
    pub(crate) fn new(adapter: &str, results: Vec<(String, Verdict)>) -> Self {
        Self {
            adapter: adapter.to_string(),
            results,
        }
    }

    /// Number of passed scenarios.
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|(_, v)| *v == Verdict::Passed)
            .count()
    }

    /// Number of not-applicable scenarios.
    pub fn not_applicable(&self) -> usize {
        self.results
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::NotApplicable(_)))
            .count()
    }

    /// Number of failed scenarios.
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Failed(_)))
            .count()
    }

    /// The verdict of one scenario.
    pub fn verdict(&self, scenario: &str) -> Option<&Verdict> {
        self.results
            .iter()
            .find(|(n, _)| n == scenario)
            .map(|(_, v)| v)
    }

    /// `conformance <adapter> passed=<P> not_applicable=<N> failed=<F>`
    pub fn summary(&self) -> String {
        format!(
            "conformance {} passed={} not_applicable={} failed={}",
            self.adapter,
            self.passed(),
            self.not_applicable(),
            self.failed()
        )
    }

    /// Panic listing the failures, if any.
    pub fn assert_ok(&self) {
        let failures: Vec<String> = self
            .results
            .iter()
            .filter_map(|(n, v)| match v {
                Verdict::Failed(why) => Some(format!("{n}: {why}")),
                _ => None,
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{}\n{}",
            self.summary(),
            failures.join("\n")
        );
    }
}
