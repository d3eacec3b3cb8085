//! Provision one user into an LDAP directory and grant a group, idempotently.
//!
//! ```text
//! IGA_LDAP_URL=ldap://127.0.0.1:3389/ \
//! IGA_LDAP_BIND_DN=cn=admin,dc=example,dc=com \
//! IGA_LDAP_PASSWORD=secret \
//! IGA_LDAP_BASE_DN=dc=example,dc=com \
//! cargo run -p iga-connector-ldap --example provision_user
//! ```
//! Start a throwaway server with `/work/shared/recipes/start-slapd.sh DIR PORT` (or any
//! OpenLDAP with `ou=people` and `ou=groups` under the base DN). Optional:
//! `IGA_LDAP_STARTTLS=1`, `IGA_LDAP_CA_FILE=/path/ca.pem`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use iga_adapter::{AccountRef, AssignmentScope, ProvisioningAdapter, ProvisioningAdapterExt};
use iga_connector_ldap::{LdapAdapter, LdapConfig, TlsConfig};
use iga_directive::Identity;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let need = ["IGA_LDAP_URL", "IGA_LDAP_BIND_DN", "IGA_LDAP_PASSWORD"];
    let missing: Vec<&str> = need
        .iter()
        .copied()
        .filter(|k| std::env::var(k).map(|v| v.is_empty()).unwrap_or(true))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "provision_user: set {} (and optionally IGA_LDAP_BASE_DN, default dc=example,dc=com).\n\
             Example: IGA_LDAP_URL=ldap://127.0.0.1:3389/ IGA_LDAP_BIND_DN=cn=admin,dc=example,dc=com \
             IGA_LDAP_PASSWORD=secret cargo run -p iga-connector-ldap --example provision_user",
            missing.join(", ")
        );
        return ExitCode::from(2);
    }
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let base = std::env::var("IGA_LDAP_BASE_DN").unwrap_or_else(|_| "dc=example,dc=com".into());
    let cfg = LdapConfig::openldap(
        env("IGA_LDAP_URL"),
        env("IGA_LDAP_BIND_DN"),
        env("IGA_LDAP_PASSWORD"),
        &base,
    )
    .with_tls(TlsConfig {
        starttls: env("IGA_LDAP_STARTTLS") == "1",
        ca_file: std::env::var_os("IGA_LDAP_CA_FILE").map(Into::into),
        danger_skip_verify: false,
    });
    let adapter = match LdapAdapter::new(cfg) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("provision_user: {e}");
            return ExitCode::FAILURE;
        }
    };
    let run = async {
        adapter.check().await?;
        println!("connected: {adapter}");
        let g = adapter
            .create_group("example-readers", Some("created by provision_user"))
            .await?;
        println!("group example-readers: {}", g.name());
        let ada = Identity::person("E-0001")
            .with_user_name("ada")
            .with_name("Ada", "Lovelace")
            .with_email("ada@example.com");
        let created = adapter.create_user(&ada, BTreeMap::new()).await?;
        println!("create ada: {created:?}");
        let granted = adapter.add_to_group(&ada, "example-readers").await?;
        println!("grant example-readers: {granted:?}");
        let again = adapter.add_to_group(&ada, "example-readers").await?;
        println!("grant again (idempotent): {again:?}");
        let held = adapter
            .list_all_assignments(&AssignmentScope::Account(AccountRef::of(&ada)))
            .await?;
        for a in held {
            println!("ada holds {}", a.entitlement);
        }
        Ok::<_, iga_adapter::Error>(())
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("provision_user: {e}");
            ExitCode::FAILURE
        }
    }
}
