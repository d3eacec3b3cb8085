//! The Graph mock rejects what Graph rejects (raw HTTP, no connector in between).

use iga_connector_entra::mock::{CLIENT_ID, GraphMock, TENANT};
use serde_json::{Value, json};

const SECRET: &str = "rules-secret";

struct Raw {
    mock: GraphMock,
    http: reqwest::Client,
    token: String,
}

impl Raw {
    async fn new() -> Self {
        let mock = GraphMock::start().await;
        mock.set_client_secret(SECRET);
        let http = iga_http::default_client().unwrap();
        let r: Value = http
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", mock.authority()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = r["access_token"].as_str().unwrap().to_string();
        Self { mock, http, token }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}{path}", self.mock.graph_base()),
            )
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let s = r.status().as_u16();
        let t = r.text().await.unwrap();
        (s, serde_json::from_str(&t).unwrap_or(Value::Null))
    }

    async fn batch(&self, requests: Value) -> (u16, Value) {
        self.call("POST", "/$batch", Some(json!({ "requests": requests })))
            .await
    }
}

fn get(id: &str, url: &str) -> Value {
    json!({"id": id, "method": "GET", "url": url})
}

#[tokio::test]
async fn batch_envelope_rules() {
    let r = Raw::new().await;
    // 21 requests: the whole batch is rejected.
    let many: Vec<Value> = (0..21)
        .map(|i| get(&i.to_string(), "/organization"))
        .collect();
    let (s, b) = r.batch(json!(many)).await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("20"));
    let ok20: Vec<Value> = (0..20)
        .map(|i| get(&i.to_string(), "/organization"))
        .collect();
    assert_eq!(r.batch(json!(ok20)).await.0, 200);
    // Ids are unique, case-insensitively.
    let (s, _) = r
        .batch(json!([
            get("a", "/organization"),
            get("A", "/organization")
        ]))
        .await;
    assert_eq!(s, 400);
    // Missing id, missing url.
    assert_eq!(
        r.batch(json!([{"method": "GET", "url": "/organization"}]))
            .await
            .0,
        400
    );
    assert_eq!(r.batch(json!([{"id": "1", "method": "GET"}])).await.0, 400);
    // A body needs a Content-Type header.
    let g = r.mock.seed_group("G");
    let (s, _) = r
        .batch(
            json!([{"id": "1", "method": "PATCH", "url": format!("/groups/{g}"),
            "body": {"description": "x"}}]),
        )
        .await;
    assert_eq!(s, 400);
    // dependsOn must name an id of the batch.
    let (s, _) = r
        .batch(json!([{"id": "1", "method": "GET", "url": "/organization", "dependsOn": ["9"]}]))
        .await;
    assert_eq!(s, 400);
    // Outer 200 even when every inner request failed.
    let (s, b) = r
        .batch(json!([
            get("1", "/users/nobody@x"),
            get("2", "/groups/none")
        ]))
        .await;
    assert_eq!(s, 200);
    assert!(
        b["responses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == 404)
    );
}

#[tokio::test]
async fn batch_depends_on_order_and_throttling() {
    let r = Raw::new().await;
    r.mock.seed(3);
    let g = r.mock.seed_group("G");
    let u = r.mock.seed_user("dana", "dana");
    let add = |id: &str| {
        json!({"id": id, "method": "POST", "url": format!("/groups/{g}/members/$ref"),
            "headers": {"Content-Type": "application/json"},
            "body": {"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}")}})
    };
    // Second add of the same member fails 400; its dependent gets 424.
    let mut third = get("3", "/organization");
    third["dependsOn"] = json!(["2"]);
    let mut second = add("2");
    second["dependsOn"] = json!(["1"]);
    let (s, b) = r.batch(json!([add("1"), second, third])).await;
    assert_eq!(s, 200);
    let by_id = |id: &str| {
        b["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("1")["status"], 204);
    assert_eq!(by_id("2")["status"], 400);
    assert_eq!(
        by_id("2")["body"]["error"]["message"],
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    assert_eq!(by_id("3")["status"], 424);
    // Responses come back in a shuffled order (seeded).
    let mut orders = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let reqs: Vec<Value> = (0..10)
            .map(|i| get(&i.to_string(), "/organization"))
            .collect();
        let (_, b) = r.batch(json!(reqs)).await;
        let ids: Vec<String> = b["responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect();
        orders.insert(ids);
    }
    assert!(orders.len() > 1, "responses always in request order");
    // Inner 429 with its own Retry-After and throttle headers.
    r.mock.throttle_next_inner(1, 7);
    let (_, b) = r.batch(json!([get("x", "/organization")])).await;
    let x = &b["responses"][0];
    assert_eq!(x["status"], 429);
    assert_eq!(x["headers"]["Retry-After"], "7");
    assert_eq!(
        x["headers"]["x-ms-throttle-information"],
        "WriteLimitExceeded"
    );
}

#[tokio::test]
async fn membership_error_bodies_paging_filters_and_auth() {
    let r = Raw::new().await;
    let g = r.mock.seed_group("G");
    let u = r.mock.seed_user("erin", "erin");
    // Not a member: 404 Request_ResourceNotFound.
    let (s, b) = r
        .call("DELETE", &format!("/groups/{g}/members/{u}/$ref"), None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(b["error"]["code"], "Request_ResourceNotFound");
    // A reference that is not a Graph URL is rejected.
    let (s, _) = r
        .call(
            "POST",
            &format!("/groups/{g}/members/$ref"),
            Some(json!({"@odata.id": u})),
        )
        .await;
    assert_eq!(s, 400);
    // members@odata.bind is all-or-nothing and capped at 20.
    r.mock.seed_member(&g, &u);
    let u2 = r.mock.seed_user("finn", "finn");
    let refs = |ids: &[&String]| json!({"members@odata.bind": ids.iter().map(|i| format!("https://graph.microsoft.com/v1.0/directoryObjects/{i}")).collect::<Vec<_>>()});
    let (s, _) = r
        .call("PATCH", &format!("/groups/{g}"), Some(refs(&[&u2, &u])))
        .await;
    assert_eq!(s, 400);
    assert_eq!(r.mock.members(&g).len(), 1, "nothing added");
    let many: Vec<&String> = std::iter::repeat_n(&u2, 21).collect();
    assert_eq!(
        r.call("PATCH", &format!("/groups/{g}"), Some(refs(&many)))
            .await
            .0,
        400
    );
    // $top above 999, unsupported filters.
    assert_eq!(r.call("GET", "/users?$top=1000", None).await.0, 400);
    let (s, b) = r
        .call("GET", "/users?$filter=startswith(displayName,'e')", None)
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["code"], "Request_UnsupportedQuery");
    // Paging: nextLink until the end.
    for i in 0..5 {
        r.mock.seed_user(&format!("p{i}"), &format!("p{i}"));
    }
    let (_, mut b) = r.call("GET", "/users?$top=3", None).await;
    let mut n = b["value"].as_array().unwrap().len();
    while let Some(next) = b["@odata.nextLink"].as_str() {
        let path = next.strip_prefix(&r.mock.graph_base()).unwrap().to_string();
        b = r.call("GET", &path, None).await.1;
        n += b["value"].as_array().unwrap().len();
    }
    assert_eq!(n, 7);
    // Unknown user property.
    let (s, b) = r
        .call(
            "PATCH",
            &format!("/users/{u}"),
            Some(json!({"favouriteColour": "red"})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist on type")
    );
    // Delta does not take $top.
    assert_eq!(r.call("GET", "/users/delta?$top=5", None).await.0, 400);
    // A conditional-access PATCH must carry whole conditions that still include someone.
    let p = r.mock.seed_ca_policy("P");
    let (s, _) = r
        .call(
            "PATCH",
            &format!("/identity/conditionalAccess/policies/{p}"),
            Some(json!({"conditions": {"users": {"includeUsers": [u]}}})),
        )
        .await;
    assert_eq!(s, 400, "missing applications");
    // PIM without justification; a duplicate PIM assignment.
    let rd = r.mock.seed_role_definition("R");
    let body = |j: &str| {
        json!({"action": "adminAssign", "principalId": u, "roleDefinitionId": rd, "directoryScopeId": "/",
            "justification": j, "scheduleInfo": {"expiration": {"type": "noExpiration"}}})
    };
    let path = "/roleManagement/directory/roleAssignmentScheduleRequests";
    assert_eq!(r.call("POST", path, Some(body(""))).await.0, 400);
    assert_eq!(r.call("POST", path, Some(body("ok"))).await.0, 201);
    let (s, b) = r.call("POST", path, Some(body("ok"))).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("RoleAssignmentExists"))
    );
    // No token, a token the mock did not issue.
    let s = r
        .http
        .get(format!("{}/organization", r.mock.graph_base()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s.as_u16(), 401);
    let s = r
        .http
        .get(format!("{}/organization", r.mock.graph_base()))
        .bearer_auth("forged")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s.as_u16(), 401);
    // A wrong client secret.
    let s = r
        .http
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", r.mock.authority()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s.as_u16(), 401);
}
