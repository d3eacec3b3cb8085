use std::fmt;

use serde::{Deserialize, Serialize};

/// How iga-connectors coexists with a legacy provisioner on one target system while a
/// customer migrates off it. Stored per system; a system without a stored mode is
/// [`CoexistenceMode::Native`]. The decision table is [`CoexistenceMode::policy`] and
/// the crate README.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CoexistenceMode {
    /// iga-connectors is the only provisioner.
    #[default]
    Native,
    /// The legacy provisioner executes; iga-connectors hands work to it and records.
    LegacyProxy,
    /// The legacy provisioner executes; iga-connectors computes what it would do,
    /// records it and reports differences.
    ShadowCompare,
    /// Both execute; iga-connectors' ledger wins on conflict; differences reported.
    DualWrite,
    /// iga-connectors executes, but the legacy system's state wins on conflict.
    LegacyOverride,
}

/// Who wins when iga-connectors' ledger and the legacy system disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictWinner {
    /// The ledger (intended state) wins; the target is corrected.
    Ledger,
    /// The legacy system wins; the difference is reported, not corrected.
    Legacy,
}

/// One row of the coexistence decision table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CoexistencePolicy {
    /// iga-connectors executes operations against the target itself.
    pub we_execute: bool,
    /// The legacy provisioner executes (we hand over or it acts on its own).
    pub legacy_executes: bool,
    /// Ledger changes are recorded (intent always; confirmations from whoever executed).
    pub record: bool,
    /// Our plan or result is compared with the legacy side and differences reported.
    pub compare_and_report: bool,
    /// Who wins on conflict.
    pub winner: ConflictWinner,
}

impl CoexistenceMode {
    /// Every mode.
    pub const ALL: [CoexistenceMode; 5] = [
        Self::Native,
        Self::LegacyProxy,
        Self::ShadowCompare,
        Self::DualWrite,
        Self::LegacyOverride,
    ];

    /// The stored name (`NATIVE`, `LEGACY_PROXY`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "NATIVE",
            Self::LegacyProxy => "LEGACY_PROXY",
            Self::ShadowCompare => "SHADOW_COMPARE",
            Self::DualWrite => "DUAL_WRITE",
            Self::LegacyOverride => "LEGACY_OVERRIDE",
        }
    }

    /// Parse a stored name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }

    /// The decision table row (see the crate README).
    pub fn policy(self) -> CoexistencePolicy {
        use ConflictWinner::*;
        let (we_execute, legacy_executes, compare_and_report, winner) = match self {
            Self::Native => (true, false, false, Ledger),
            Self::LegacyProxy => (false, true, false, Legacy),
            Self::ShadowCompare => (false, true, true, Legacy),
            Self::DualWrite => (true, true, true, Ledger),
            Self::LegacyOverride => (true, false, true, Legacy),
        };
        CoexistencePolicy {
            we_execute,
            legacy_executes,
            record: true,
            compare_and_report,
            winner,
        }
    }
}

impl fmt::Display for CoexistenceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
