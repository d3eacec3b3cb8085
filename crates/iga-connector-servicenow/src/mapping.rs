//! Requested item (+ variables + approver) -> directive, through the catalog mapping.

use std::collections::BTreeMap;

use iga_adapter::RejectedInput;
use iga_directive::{AccessDirective, ApprovalRef, EntitlementKind, EntitlementRef, Identity};

use crate::client::{Row, field};
use crate::config::ServiceNowConfig;
use crate::time::parse_glide;

/// The RITM fields a poll or a webhook reads.
pub(crate) const RITM_FIELDS: &str = "sys_id,number,cat_item,cat_item.name,requested_for,requested_for.user_name,requested_for.email,approval,approval_set,sys_updated_on,sys_mod_count";

/// Everything known about one approved requested item.
#[derive(Debug, Clone, Default)]
pub(crate) struct Approved {
    pub(crate) row: Row,
    pub(crate) variables: BTreeMap<String, String>,
    pub(crate) approver: Option<String>,
}

impl Approved {
    pub(crate) fn number(&self) -> &str {
        field(&self.row, "number")
    }
}

/// Map an approved item to a directive, or say why not (the reason names the
/// field or variable).
pub(crate) fn to_directive(
    cfg: &ServiceNowConfig,
    a: &Approved,
) -> Result<AccessDirective, RejectedInput> {
    let number = a.number();
    let location = if number.is_empty() {
        format!("sc_req_item {}", field(&a.row, "sys_id"))
    } else {
        number.to_string()
    };
    let reject = |reason: String| RejectedInput::new(location.clone(), reason);
    if number.is_empty() {
        return Err(reject("the requested item has no `number`".into()));
    }
    let item_name = field(&a.row, "cat_item.name");
    let item_id = field(&a.row, "cat_item");
    let m = cfg.mapping_for(item_name, item_id).ok_or_else(|| {
        reject(format!(
            "catalog item `{}` is not mapped (configure `catalog[].cat_item`)",
            if item_name.is_empty() {
                item_id
            } else {
                item_name
            }
        ))
    })?;
    let var = |name: &str| -> Result<String, RejectedInput> {
        a.variables
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| reject(format!("catalog variable `{name}` is missing or empty")))
    };
    let user = match &m.identity_variable {
        Some(v) => var(v)?,
        None => {
            let u = field(&a.row, "requested_for.user_name").trim();
            if u.is_empty() {
                return Err(reject("`requested_for.user_name` is empty".into()));
            }
            u.to_string()
        }
    };
    let mut identity = Identity::person(&user).with_user_name(&user);
    let email = field(&a.row, "requested_for.email");
    if !email.is_empty() && m.identity_variable.is_none() {
        identity = identity.with_email(email);
    }
    let decided_raw = match field(&a.row, "approval_set") {
        "" => field(&a.row, "sys_updated_on"),
        s => s,
    };
    let decided = parse_glide(decided_raw).ok_or_else(|| {
        reject(format!(
            "`approval_set` `{decided_raw}` is not a date-time (yyyy-MM-dd HH:mm:ss)"
        ))
    })?;
    let mut approval = ApprovalRef::new(&cfg.source_name, number).decided_at(decided);
    approval.url = Some(format!(
        "{}/sc_req_item.do?sys_id={}",
        cfg.instance_url.trim_end_matches('/'),
        field(&a.row, "sys_id")
    ));
    if let Some(ap) = &a.approver {
        approval = approval.approver(ap);
    }
    let mut b = AccessDirective::builder(&cfg.tenant, &m.system, identity, m.action)
        .approval(approval)
        .requested_at(decided);
    if m.action.needs_entitlement() {
        let id = match (&m.entitlement, &m.entitlement_variable) {
            (Some(e), _) => e.clone(),
            (None, Some(v)) => var(v)?,
            (None, None) => return Err(reject("no entitlement configured".into())),
        };
        b = b.entitlement(EntitlementRef::new(
            EntitlementKind::parse(&m.entitlement_kind),
            id,
        ));
    }
    for (attr, v) in &m.attributes {
        b = b.attribute(attr, var(v)?);
    }
    b.build()
        .map_err(|e| reject(format!("not a valid directive: {e}")))
}
