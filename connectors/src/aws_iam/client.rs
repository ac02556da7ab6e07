//! The AWS Query API over [`HttpClient`]: one `GET ?Action=...&Version=...` request signed with
//! SigV4 ([`aws_sigv4`]) per attempt, its XML answer parsed with [`roxmltree`], its AWS error
//! (`<ErrorResponse><Error><Code>`) classified into an [`ErrorKind`], and `Marker`/`IsTruncated`
//! paging.
//!
//! Throttling (`Throttling`, `ThrottlingException`, `RequestLimitExceeded`,
//! `TooManyRequestsException`, usually HTTP 400) is [`ErrorKind::Throttled`] and retried with
//! the [`HttpClient`]'s backoff like a 429. Never logs or returns a key, a token or a
//! signature.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::http::{HttpClient, classify_status};
use crate::{CollectionError, ErrorKind};

/// IAM Query API version.
pub const IAM_VERSION: &str = "2010-05-08";
/// STS Query API version.
pub const STS_VERSION: &str = "2011-06-15";

/// Most bytes of an AWS error message kept in a [`CollectionError`].
const MAX_MESSAGE_CHARS: usize = 300;

/// AWS credentials for signing (the secret and the session token redacted in `Debug`).
#[derive(Clone)]
pub struct AwsCredentials {
    /// Access key id (not secret: it appears in every signed request).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: SecretString,
    /// Session token of temporary credentials (STS).
    pub session_token: Option<SecretString>,
    /// When temporary credentials expire.
    pub expiration: Option<chrono::DateTime<chrono::Utc>>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// One AWS Query API service endpoint (IAM or STS) with its signing scope.
#[derive(Debug, Clone)]
pub struct QueryApi {
    http: HttpClient,
    base: Url,
    region: String,
    service: &'static str,
    version: &'static str,
}

/// A parsed XML response (owned text; parse it with [`QueryApi::parse`]).
pub type Xml = String;

impl QueryApi {
    /// A client of `service` (`"iam"`, `"sts"`) at `base`, signing for `region`.
    pub fn new(
        http: HttpClient,
        base: Url,
        region: impl Into<String>,
        service: &'static str,
        version: &'static str,
    ) -> Self {
        Self {
            http,
            base,
            region: region.into(),
            service,
            version,
        }
    }

    /// The label of `action` in errors and logs, e.g. `iam:ListUsers`.
    pub fn label(&self, action: &str) -> String {
        format!("{}:{action}", self.service)
    }

    /// The request URL of `action` with `params`.
    pub fn url(&self, action: &str, params: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        {
            let mut q = url.query_pairs_mut();
            q.clear();
            q.append_pair("Action", action);
            q.append_pair("Version", self.version);
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// Call `action` once (with retries on throttling and transient failures), signed with
    /// `creds` (`None`: unsigned, e.g. `AssumeRoleWithWebIdentity`); returns the XML body.
    pub async fn call(
        &self,
        creds: Option<&AwsCredentials>,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<Xml, CollectionError> {
        let label = self.label(action);
        let url = self.url(action, params);
        let region = self.region.clone();
        let service = self.service;
        let sign_label = label.clone();
        let signer = move |u: &Url| match creds {
            None => Ok(Vec::new()),
            Some(c) => sign_headers(c, &region, service, u, SystemTime::now())
                .map_err(|m| CollectionError::new(ErrorKind::Auth, &sign_label, m)),
        };
        let body = self
            .http
            .get_signed(&label, &url, &signer, &aws_error)
            .await?;
        String::from_utf8(body).map_err(|_| {
            CollectionError::new(ErrorKind::Malformed, &label, "response body is not UTF-8")
        })
    }

    /// Call a paged list action until `IsTruncated` is false, passing each page's `Marker`
    /// back; `each` reads one page's XML. At most `max_pages` pages.
    pub async fn call_paged(
        &self,
        creds: Option<&AwsCredentials>,
        action: &str,
        params: &[(&str, &str)],
        max_pages: usize,
        mut each: impl FnMut(roxmltree::Node<'_, '_>) -> Result<(), String>,
    ) -> Result<(), CollectionError> {
        let label = self.label(action);
        let mut marker: Option<String> = None;
        for _ in 0..max_pages {
            let mut p: Vec<(&str, &str)> = params.to_vec();
            if let Some(m) = &marker {
                p.push(("Marker", m));
            }
            let xml = self.call(creds, action, &p).await?;
            let doc = parse(&label, &xml)?;
            let result = doc.root_element();
            each(result).map_err(|m| malformed(&label, m))?;
            // A flag that is not a boolean is refused rather than read as `false`: that would
            // judge the first page as the whole list.
            let truncated = match child_text(result, "IsTruncated", true).map(str::trim) {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(malformed(
                        &label,
                        format!(
                            "IsTruncated {:?} is not a boolean",
                            other.chars().take(40).collect::<String>()
                        ),
                    ));
                }
            };
            marker = if truncated {
                match child_text(result, "Marker", true) {
                    Some(m) if !m.trim().is_empty() => Some(m.trim().to_owned()),
                    _ => return Err(malformed(&label, "IsTruncated without a Marker")),
                }
            } else {
                None
            };
            if marker.is_none() {
                return Ok(());
            }
        }
        Err(CollectionError::new(
            ErrorKind::Other,
            label,
            format!("more than {max_pages} pages; giving up"),
        ))
    }
}

/// A [`ErrorKind::Malformed`] error for `label`.
pub fn malformed(label: &str, message: impl Into<String>) -> CollectionError {
    CollectionError::new(
        ErrorKind::Malformed,
        label,
        format!(
            "response does not match the documented shape: {}",
            message.into()
        ),
    )
}

/// Parse an XML body (a DTD, hence any entity declaration, is refused: roxmltree default).
pub fn parse<'x>(label: &str, xml: &'x str) -> Result<roxmltree::Document<'x>, CollectionError> {
    roxmltree::Document::parse(xml).map_err(|e| malformed(label, format!("XML: {e}")))
}

/// The first descendant element (or direct child when `!deep`) named `name` (any namespace).
pub fn child<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &str,
    deep: bool,
) -> Option<roxmltree::Node<'a, 'i>> {
    if deep {
        node.descendants()
            .find(|n| n.is_element() && n.tag_name().name() == name)
    } else {
        node.children()
            .find(|n| n.is_element() && n.tag_name().name() == name)
    }
}

/// The text of [`child`].
pub fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &str, deep: bool) -> Option<&'a str> {
    child(node, name, deep).map(|n| n.text().unwrap_or(""))
}

/// The `<member>` elements of the first descendant list element named `list`.
pub fn members<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    list: &str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    child(node, list, true).into_iter().flat_map(|l| {
        l.children()
            .filter(|n| n.is_element() && n.tag_name().name() == "member")
    })
}

/// The SigV4 headers (`authorization`, `x-amz-date`, `x-amz-security-token`) of a GET of
/// `url` with an empty body, at `time`.
pub fn sign_headers(
    creds: &AwsCredentials,
    region: &str,
    service: &str,
    url: &Url,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity = Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.expose_secret().to_owned(),
        creds
            .session_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        None,
        "postured",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("SigV4 parameters: {e}"))?
        .into();
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::empty(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| format!("SigV4 request: {e}"))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| format!("SigV4 signing: {e}"))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// Whether an AWS error code means throttling.
pub fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "RequestThrottledException"
    )
}

/// Classify an AWS Query API error response: the `<Error><Code>` first (throttling codes,
/// credential codes → unauthorized, `AccessDenied` → forbidden, `NoSuchEntity` → not found),
/// then the HTTP status.
pub fn aws_error(
    endpoint: &str,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> CollectionError {
    let text = String::from_utf8_lossy(body);
    let doc = roxmltree::Document::parse(&text).ok();
    let root = doc.as_ref().map(|d| d.root_element());
    let code = root
        .and_then(|r| child_text(r, "Code", true))
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let detail = root
        .and_then(|r| child_text(r, "Message", true))
        .map(|m| m.trim().chars().take(MAX_MESSAGE_CHARS).collect::<String>());
    let kind = match code.as_deref() {
        Some(c) if is_throttling_code(c) => ErrorKind::Throttled,
        Some(
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "UnrecognizedClientException"
            | "InvalidIdentityToken"
            | "AuthFailure",
        ) => ErrorKind::Unauthorized,
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation") => {
            ErrorKind::Forbidden
        }
        Some("NoSuchEntity") => ErrorKind::NotFound,
        _ if status == 503 && retry_after.is_some() => ErrorKind::Throttled,
        _ => classify_status(status),
    };
    let mut message = format!("HTTP {status}");
    if let Some(c) = &code {
        message.push_str(&format!(" ({c})"));
    }
    if let Some(d) = detail {
        message.push_str(": ");
        message.push_str(&d);
    }
    CollectionError {
        kind,
        endpoint: endpoint.to_owned(),
        status: Some(status),
        code,
        message,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shapes_are_classified() {
        let body = br#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>"#;
        let e = aws_error("iam:ListUsers", 400, None, body);
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert_eq!(e.code.as_deref(), Some("Throttling"));
        assert!(crate::http::is_retryable(&e));
        let e = aws_error(
            "iam:ListUsers",
            403,
            None,
            b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>",
        );
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert!(!crate::http::is_retryable(&e));
        let e = aws_error(
            "iam:X",
            403,
            None,
            b"<ErrorResponse><Error><Code>InvalidClientTokenId</Code></Error></ErrorResponse>",
        );
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        // The generic shape from botocore's parser (realdata/aws-iam/error-response.query-shape.xml).
        let e = aws_error(
            "iam:X",
            400,
            None,
            include_bytes!("../../fixtures/aws_iam/error-response.query-shape.xml"),
        );
        assert_eq!(e.kind, ErrorKind::Other);
        assert_eq!(e.code.as_deref(), Some("InvalidInput"));
        let e = aws_error("iam:X", 502, None, b"<html>");
        assert_eq!(e.kind, ErrorKind::Server);
    }

    #[test]
    fn signature_has_the_documented_headers() {
        let creds = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Some(SecretString::from("token")),
            expiration: None,
        };
        let url =
            Url::parse("https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08").unwrap();
        let h = sign_headers(&creds, "us-east-1", "iam", &url, SystemTime::UNIX_EPOCH).unwrap();
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("x-amz-date"), Some("19700101T000000Z"));
        assert_eq!(get("x-amz-security-token"), Some("token"));
        let auth = get("authorization").unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/19700101/us-east-1/iam/aws4_request"
            ),
            "{auth}"
        );
    }
}
