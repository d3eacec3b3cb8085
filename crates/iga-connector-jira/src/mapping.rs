//! Issue + approvals → directives, or a rejection naming the issue and field.

use iga_adapter::RejectedInput;
use iga_directive::{
    AccessDirective, Action, ApprovalRef, DirectiveId, EntitlementRef, Identity, Timestamp,
};
use serde_json::Value;

use crate::config::{JiraConnection, JiraSourceConfig};
use crate::time::parse_jira_time;

/// The combined decision of a request's approvals.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Every approval is final and approved.
    Approved {
        approver: Option<String>,
        decided_at: Option<Timestamp>,
    },
    /// At least one approval was declined.
    Declined,
    /// Some approval is still pending, or there is none.
    Pending,
}

/// Combine service-desk approvals (`values` of `GET .../approval`).
pub(crate) fn decision(approvals: &[Value]) -> Result<Decision, String> {
    if approvals.is_empty() {
        return Ok(Decision::Pending);
    }
    let mut approver = None;
    let mut decided_at: Option<Timestamp> = None;
    let mut pending = false;
    for a in approvals {
        let fd = a
            .get("finalDecision")
            .and_then(Value::as_str)
            .ok_or_else(|| "approval without finalDecision".to_string())?;
        match fd {
            "declined" => return Ok(Decision::Declined),
            "pending" => pending = true,
            "approved" => {
                if let Some(c) = a.get("completedDate") {
                    let iso = c
                        .get("iso8601")
                        .and_then(Value::as_str)
                        .ok_or_else(|| "approval completedDate without iso8601".to_string())?;
                    let t = parse_jira_time(iso)
                        .ok_or_else(|| format!("approval completedDate '{iso}' is not a time"))?;
                    if decided_at.is_none_or(|d| t > d) {
                        decided_at = Some(t);
                        approver = a
                            .get("approvers")
                            .and_then(Value::as_array)
                            .and_then(|list| {
                                list.iter().find(|x| {
                                    x.get("approverDecision").and_then(Value::as_str)
                                        == Some("approved")
                                })
                            })
                            .and_then(|x| x.get("approver"))
                            .and_then(|p| {
                                p.get("emailAddress")
                                    .or_else(|| p.get("accountId"))
                                    .and_then(Value::as_str)
                            })
                            .map(str::to_string);
                    }
                }
            }
            other => return Err(format!("unknown approval finalDecision '{other}'")),
        }
    }
    Ok(if pending {
        Decision::Pending
    } else {
        Decision::Approved {
            approver,
            decided_at,
        }
    })
}

const IDENTITY_KEYS: &[&str] = &["emailAddress", "accountId", "value", "name", "key", "id"];
const VALUE_KEYS: &[&str] = &["value", "name", "key", "id"];

/// Strings held by a field value; `Err` when the shape is not understood.
fn strings(v: &Value, keys: &[&str]) -> Result<Vec<String>, ()> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(if s.trim().is_empty() {
            Vec::new()
        } else {
            vec![s.trim().to_string()]
        }),
        Value::Object(o) => {
            for k in keys {
                if let Some(Value::String(s)) = o.get(*k)
                    && !s.trim().is_empty()
                {
                    return Ok(vec![s.trim().to_string()]);
                }
            }
            Err(())
        }
        Value::Array(a) => {
            let mut out = Vec::new();
            for x in a {
                if x.is_array() {
                    return Err(());
                }
                out.extend(strings(x, keys)?);
            }
            Ok(out)
        }
        _ => Err(()),
    }
}

/// The issue key (or id) for locations.
pub(crate) fn issue_key(issue: &Value) -> String {
    issue
        .get("key")
        .or_else(|| issue.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("<issue without key>")
        .to_string()
}

/// Map an approved issue to its directives. Either every directive of the issue
/// is returned or none (a rejection naming the field).
pub(crate) fn map_issue(
    cfg: &JiraSourceConfig,
    conn: &JiraConnection,
    issue: &Value,
    approver: Option<&str>,
    decided_at: Option<Timestamp>,
) -> Result<Vec<AccessDirective>, RejectedInput> {
    let key = issue_key(issue);
    let m = &cfg.mapping;
    let fields = issue
        .get("fields")
        .and_then(Value::as_object)
        .ok_or_else(|| RejectedInput::new(key.clone(), "issue has no fields object"))?;
    let field = |name: &str, role: &str, keys: &[&str]| -> Result<Vec<String>, RejectedInput> {
        let v = fields.get(name).unwrap_or(&Value::Null);
        strings(v, keys).map_err(|()| {
            RejectedInput::new(
                format!("{key}:{name}"),
                format!("{role} field {name} has a value of an unsupported shape"),
            )
        })
    };
    let one = |name: &str, role: &str, keys: &[&str]| -> Result<Option<String>, RejectedInput> {
        let mut vs = field(name, role, keys)?;
        match vs.len() {
            0 => Ok(None),
            1 => Ok(vs.pop()),
            n => Err(RejectedInput::new(
                format!("{key}:{name}"),
                format!("{role} field {name} holds {n} values, expected one"),
            )),
        }
    };
    let identity = one(&m.identity, "identity", IDENTITY_KEYS)?.ok_or_else(|| {
        RejectedInput::new(
            format!("{key}:{}", m.identity),
            format!("identity field {} is empty or missing", m.identity),
        )
    })?;
    let entitlements = field(&m.entitlement, "entitlement", VALUE_KEYS)?;
    if entitlements.is_empty() {
        return Err(RejectedInput::new(
            format!("{key}:{}", m.entitlement),
            format!("entitlement field {} is empty or missing", m.entitlement),
        ));
    }
    let action = match &m.action {
        None => m.default_action,
        Some(f) => {
            let raw = one(f, "action", VALUE_KEYS)?.ok_or_else(|| {
                RejectedInput::new(
                    format!("{key}:{f}"),
                    format!("action field {f} is empty or missing"),
                )
            })?;
            *m.action_values
                .get(&raw.to_ascii_lowercase())
                .ok_or_else(|| {
                    RejectedInput::new(
                        format!("{key}:{f}"),
                        format!("action value '{raw}' is not mapped"),
                    )
                })?
        }
    };
    if !matches!(action, Action::Grant | Action::Revoke) {
        return Err(RejectedInput::new(
            key.clone(),
            format!("action {action} needs no entitlement; only grant and revoke are mapped"),
        ));
    }
    let system = match &m.system {
        Some(f) => one(f, "system", VALUE_KEYS)?,
        None => None,
    }
    .or_else(|| m.default_system.clone())
    .ok_or_else(|| {
        RejectedInput::new(
            format!("{key}:{}", m.system.as_deref().unwrap_or("system")),
            "no target system: field empty and no default system",
        )
    })?;
    let updated = fields
        .get("updated")
        .and_then(Value::as_str)
        .and_then(parse_jira_time);
    let mut approval = ApprovalRef::new(&cfg.name, &key).url(conn.browse_url(&key));
    if let Some(a) = approver {
        approval = approval.approver(a);
    }
    if let Some(t) = decided_at {
        approval = approval.decided_at(t);
    }
    let mut person = Identity::person(&identity);
    if identity.contains('@') {
        person = person.with_email(&identity);
    }
    let mut out = Vec::with_capacity(entitlements.len());
    for ent in entitlements {
        let mut b = AccessDirective::builder(&cfg.tenant, &system, person.clone(), action)
            .entitlement(EntitlementRef::new(m.entitlement_kind.clone(), ent))
            .approval(approval.clone());
        if let Some(t) = decided_at.or(updated) {
            b = b.requested_at(t);
        }
        let d = b
            .build()
            .map_err(|e| RejectedInput::new(key.clone(), format!("invalid directive: {e}")))?;
        out.push(d);
    }
    Ok(out)
}

/// The directive ids an issue maps to (approval details do not change ids).
pub(crate) fn directive_ids(
    cfg: &JiraSourceConfig,
    conn: &JiraConnection,
    issue: &Value,
) -> Option<Vec<DirectiveId>> {
    map_issue(cfg, conn, issue, None, None)
        .ok()
        .map(|ds| ds.into_iter().map(|d| d.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FieldMapping, JiraAuth};
    use serde_json::json;

    fn cfg() -> (JiraSourceConfig, JiraConnection) {
        let m = FieldMapping::new("customfield_1", "customfield_2")
            .action_field("customfield_3")
            .default_system("ldap");
        (
            JiraSourceConfig::new("acme", "project = ACC", m),
            JiraConnection::new(
                "https://x.atlassian.net",
                JiraAuth::Bearer(iga_adapter::Secret::new("t")),
            )
            .unwrap(),
        )
    }

    #[test]
    fn maps_and_rejects_with_location() {
        let (c, conn) = cfg();
        let issue = json!({"id":"1","key":"ACC-1","fields":{
            "customfield_1":{"accountId":"5b1","emailAddress":"ada@example.com"},
            "customfield_2":[{"value":"cn=fin"},{"value":"cn=ops"}],
            "customfield_3":{"value":"Grant"},
            "updated":"2026-11-22T10:15:30.000+0100"}});
        let ds = map_issue(&c, &conn, &issue, Some("bo"), None).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0].identity.id, "ada@example.com");
        assert_eq!(ds[0].approval.as_ref().unwrap().ticket_id, "ACC-1");
        assert_eq!(ds[0].system, "ldap");
        let again = map_issue(&c, &conn, &issue, None, None).unwrap();
        assert_eq!(
            again[0].id, ds[0].id,
            "ids do not depend on approval details"
        );

        let mut bad = issue.clone();
        bad["fields"]["customfield_3"] = json!({"value":"Extend"});
        let r = map_issue(&c, &conn, &bad, None, None).unwrap_err();
        assert_eq!(r.location, "ACC-1:customfield_3");
        assert!(r.reason.contains("'Extend' is not mapped"));

        let mut bad = issue.clone();
        bad["fields"]["customfield_1"] = json!(42);
        let r = map_issue(&c, &conn, &bad, None, None).unwrap_err();
        assert_eq!(r.location, "ACC-1:customfield_1");

        let mut bad = issue;
        bad["fields"]
            .as_object_mut()
            .unwrap()
            .remove("customfield_2");
        let r = map_issue(&c, &conn, &bad, None, None).unwrap_err();
        assert!(r.reason.contains("empty or missing"), "{r:?}");
    }

    #[test]
    fn decisions() {
        let ok = json!({"finalDecision":"approved","approvers":[{"approver":{"accountId":"5b"},"approverDecision":"approved"}],
            "completedDate":{"iso8601":"2025-05-01T09:55:00+0000"}});
        match decision(std::slice::from_ref(&ok)).unwrap() {
            Decision::Approved {
                approver,
                decided_at,
            } => {
                assert_eq!(approver.as_deref(), Some("5b"));
                assert!(decided_at.is_some());
            }
            d => panic!("{d:?}"),
        }
        let declined = json!({"finalDecision":"declined"});
        assert_eq!(
            decision(&[ok.clone(), declined]).unwrap(),
            Decision::Declined
        );
        assert_eq!(
            decision(&[ok, json!({"finalDecision":"pending"})]).unwrap(),
            Decision::Pending
        );
        assert!(decision(&[json!({"finalDecision":"maybe"})]).is_err());
        assert_eq!(decision(&[]).unwrap(), Decision::Pending);
    }
}
