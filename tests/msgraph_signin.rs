//! End-to-end: a msgraph connector configured to sign in without a client secret polls a
//! tenant through the daemon (configuration → settings → connector → token → Graph), over
//! real loopback HTTP. The credential forms themselves are tested in
//! `connectors/tests/msgraph_signin.rs`.

mod support;

use postured::store::PollOutcome;
use support::*;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GUID: &str = "00000001-0001-0001-0001-000000000001";

#[tokio::test]
async fn managed_identity_configured_in_toml_polls_with_the_imds_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/metadata/identity/oauth2/token"))
        .and(header("metadata", "true"))
        .and(query_param("api-version", "2018-02-01"))
        .and(query_param("resource", "https://graph.microsoft.com"))
        .and(query_param("client_id", "user-assigned-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "imds-access-token",
            "expires_in": "3599",
            "expires_on": "1506484173",
            "resource": "https://graph.microsoft.com",
            "token_type": "Bearer"
        })))
        .expect(1)
        .mount(&server)
        .await;
    mount_graph_examples(&server).await;
    // The standard block with its secret swapped for a managed identity (and no client id).
    let block = tenant_block("mi", GUID, "unused", &server.uri(), "0 0 * * * *")
        .replace("  client_id = \"unused\"\n", "")
        .replace(
            "client_secret = { env = \"TEST_CLIENT_SECRET\" }",
            &format!(
                "managed_identity = {{ client_id = \"user-assigned-1\", endpoint = \"{}/metadata/identity/oauth2/token\" }}",
                server.uri()
            ),
        );
    assert!(block.contains("managed_identity") && !block.contains("client_id = \"unused\""));
    let app = TestApp::spawn("", &block).await;
    let report = app.poll("mi").await;
    assert_eq!(
        report.outcome,
        PollOutcome::Success,
        "errors: {:?}",
        report.errors
    );
    let graph: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path().starts_with("/v1.0/"))
        .collect();
    assert_eq!(
        graph.len(),
        postured_connectors::msgraph::MsGraphSnapshot::ENDPOINTS
    );
    for r in graph {
        assert_eq!(
            r.headers.get("authorization").unwrap(),
            "Bearer imds-access-token"
        );
    }
}
