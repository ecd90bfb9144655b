//! Verification of the access-key signature (`HMAC-SHA256 SignedHeaders=…&Signature=…`) that
//! the identity SDKs put on every request, and of the freshness of the date it signs. Pure
//! function of the request parts, the key and "now" (the caller picks the clock).
//!
//! String to sign (api-contract.md §8, sdk-clients.md §1.5, §2.4):
//! `VERB\n<path and query>\n<x-ms-date>;<host>;<x-ms-content-sha256>`.
//! The SDKs disagree on details, so several candidates are tried:
//! - path: as sent, percent-decoded (Python async with `decode_url`), and without its leading `/`
//!   (Python slices `len(host) + 8` characters off the URL, which eats the `/` over plain http);
//! - host: the `Host` header, the same plus `/` (Python signs its configured endpoint, trailing
//!   slash included), and `host:port` ↔ `host:port:port` (JS appends the port to a `url.host`
//!   that already has it, and sends that as `Host` too, unless something on the way rewrites it).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::PrimitiveDateTime;
use time::macros::format_description;

/// How far the signed date may be from now, either way, in seconds. ACS documents no figure
/// of its own (its headers page only asks for an RFC 1123 UTC date in `Date` or `x-ms-date`);
/// 15 minutes is what Azure's HMAC schemes state: App Configuration's "HMAC authentication -
/// REST API reference" (`azure-app-configuration/rest-api-authentication-hmac`, the same
/// `x-ms-date;host;x-ms-content-sha256` scheme) says the date "can't be more than 15 minutes
/// off from the current Coordinated Universal Time", and Storage's Shared Key allows the same.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No, a malformed or a wrong signature; the text is for the log only.
    Signature(String),
    /// A correct signature over a date that is not an HTTP date or is outside
    /// `MAX_CLOCK_SKEW_SECS`; `header` names the signed header (`x-ms-date` or `Date`).
    Date {
        header: &'static str,
        reason: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Signature(reason) => f.write_str(reason),
            Refusal::Date { header, reason } => write!(f, "{header}: {reason}"),
        }
    }
}

impl From<String> for Refusal {
    fn from(reason: String) -> Self {
        Refusal::Signature(reason)
    }
}

impl From<&str> for Refusal {
    fn from(reason: &str) -> Self {
        Refusal::Signature(reason.to_owned())
    }
}

/// The parts of a request the signature covers.
#[derive(Debug)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Path and query exactly as received (still percent-encoded).
    pub path_and_query: &'a str,
    pub host: &'a str,
    pub authorization: &'a str,
    /// The `x-ms-date` header.
    pub ms_date: Option<&'a str>,
    /// The `Date` header (signed instead of `x-ms-date` by older SDKs).
    pub date: Option<&'a str>,
    pub content_sha256: Option<&'a str>,
    pub body: &'a [u8],
}

/// Base64 SHA-256 of a body, as in `x-ms-content-sha256`.
pub fn content_hash(body: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(body))
}

/// Checks what can be checked before the body is read: an `Authorization` that parses as an
/// HMAC-SHA256 signature over a supported header set, the signed date present and within
/// `MAX_CLOCK_SKEW_SECS` of `now_secs`, and an `x-ms-content-sha256`. `request.body` is not
/// looked at. A request that fails here cannot pass `verify`, so the caller refuses it without
/// reading (and buffering) a body that the signature would only cover.
pub fn check_before_body(request: &SignedRequest<'_>, now_secs: i64) -> Result<(), Refusal> {
    let parts = signed_parts(request)?;
    check_date(request, &parts.date_header, now_secs)
}

/// Checks the request's signature against `key`, then that the date it signs is within
/// `MAX_CLOCK_SKEW_SECS` of `now_secs` (seconds since the Unix epoch); `Err` says why not.
pub fn verify(request: &SignedRequest<'_>, key: &[u8], now_secs: i64) -> Result<(), Refusal> {
    let date_header = verify_signature(request, key)?;
    check_date(request, &date_header, now_secs)
}

/// Whether the date `date_header` names is an HTTP date within the allowed skew of now.
fn check_date(
    request: &SignedRequest<'_>,
    date_header: &SignedDate,
    now_secs: i64,
) -> Result<(), Refusal> {
    let (header, date) = match date_header {
        SignedDate::MsDate => ("x-ms-date", request.ms_date),
        SignedDate::Date => ("Date", request.date),
    };
    let date = date.unwrap_or_default();
    let refuse = |reason: String| Refusal::Date { header, reason };
    let signed_at =
        parse_http_date(date).ok_or_else(|| refuse(format!("{date:?} is not an HTTP date")))?;
    // Both ways: a date far ahead would let a captured request be replayed until then.
    if (signed_at - now_secs).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(refuse(format!(
            "{date} is {}s from now; at most {MAX_CLOCK_SKEW_SECS}s are allowed",
            signed_at - now_secs
        )));
    }
    Ok(())
}

/// Which header's date a signature covers.
enum SignedDate {
    MsDate,
    Date,
}

/// Seconds since the Unix epoch of an IMF-fixdate (`Thu, 26 Nov 2026 11:57:41 GMT`), the
/// HTTP-date form every SDK sends (RFC 9110 §5.6.7; JS `toUTCString`, Python
/// `format_date_time`). The obsolete RFC 850 and asctime forms are not accepted.
fn parse_http_date(text: &str) -> Option<i64> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let parsed = PrimitiveDateTime::parse(text.trim(), &format).ok()?;
    Some(parsed.assume_utc().unix_timestamp())
}

/// The parsed `Authorization` of a signed request and the headers it names.
struct SignedParts<'a> {
    date_header: SignedDate,
    date: &'a str,
    signature: Vec<u8>,
    claimed_hash: &'a str,
}

/// Parses `Authorization` and finds the headers it signs; the body is not looked at.
fn signed_parts<'a>(request: &SignedRequest<'a>) -> Result<SignedParts<'a>, String> {
    let params = request
        .authorization
        .strip_prefix("HMAC-SHA256 ")
        .ok_or("Authorization is not an HMAC-SHA256 signature")?;
    let mut signed_headers = None;
    let mut signature = None;
    for part in params.split('&') {
        if let Some(v) = part.trim().strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.trim().strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let signed_headers = signed_headers.ok_or("SignedHeaders is missing")?;
    // Current SDKs sign `x-ms-date`; older ones (identity 1.0.x, administration 1.0.0b4) sign the
    // `Date` header, which the service documents as the header `x-ms-date` may replace.
    let (date_header, date) =
        if signed_headers.eq_ignore_ascii_case("x-ms-date;host;x-ms-content-sha256") {
            (
                SignedDate::MsDate,
                request.ms_date.ok_or("x-ms-date is missing")?,
            )
        } else if signed_headers.eq_ignore_ascii_case("date;host;x-ms-content-sha256") {
            (SignedDate::Date, request.date.ok_or("Date is missing")?)
        } else {
            return Err(format!("unsupported SignedHeaders {signed_headers}"));
        };
    let signature = STANDARD
        .decode(signature.ok_or("Signature is missing")?)
        .map_err(|_| "Signature is not base64")?;
    let claimed_hash = request
        .content_sha256
        .ok_or("x-ms-content-sha256 is missing")?;
    Ok(SignedParts {
        date_header,
        date,
        signature,
        claimed_hash,
    })
}

/// Checks the signature only; `Ok` says which date header it covers.
fn verify_signature(request: &SignedRequest<'_>, key: &[u8]) -> Result<SignedDate, String> {
    let SignedParts {
        date_header: signed_date,
        date,
        signature,
        claimed_hash,
    } = signed_parts(request)?;
    if claimed_hash != content_hash(request.body) {
        return Err("x-ms-content-sha256 does not match the body".to_owned());
    }

    let decoded_path = percent_encoding::percent_decode_str(request.path_and_query)
        .decode_utf8_lossy()
        .into_owned();
    let mut paths = vec![request.path_and_query.to_owned(), decoded_path];
    for i in 0..2 {
        if let Some(stripped) = paths[i].strip_prefix('/') {
            paths.push(stripped.to_owned());
        }
    }
    let mut hosts = vec![request.host.to_owned(), format!("{}/", request.host)];
    if let Some(undoubled) = undouble_port(request.host) {
        hosts.push(undoubled);
    } else if let Some((_, port)) = request.host.rsplit_once(':') {
        hosts.push(format!("{}:{port}", request.host));
    }

    for path in &paths {
        for host in &hosts {
            let to_sign = format!(
                "{}\n{path}\n{date};{host};{claimed_hash}",
                request.method.to_ascii_uppercase()
            );
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                .map_err(|_| "access key cannot key HMAC".to_owned())?;
            mac.update(to_sign.as_bytes());
            if mac.verify_slice(&signature).is_ok() {
                return Ok(signed_date);
            }
        }
    }
    Err("signature does not match the access key".to_owned())
}

/// `127.0.0.1:8443:8443` → `127.0.0.1:8443`.
fn undouble_port(host: &str) -> Option<String> {
    let (head, last) = host.rsplit_once(':')?;
    let (_, previous) = head.rsplit_once(':')?;
    (previous == last).then(|| head.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The date the requests below sign, as "now".
    const SIGNED_AT: &str = "Thu, 26 Nov 2026 11:57:41 GMT";

    fn now() -> i64 {
        parse_http_date(SIGNED_AT).expect("an HTTP date")
    }

    fn sign(key: &[u8], to_sign: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(to_sign.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }

    fn request<'a>(auth: &'a str, host: &'a str, hash: &'a str) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            path_and_query: "/identities?api-version=2023-10-01",
            host,
            authorization: auth,
            ms_date: Some("Thu, 26 Nov 2026 11:57:41 GMT"),
            date: None,
            content_sha256: Some(hash),
            body: b"",
        }
    }

    #[test]
    fn accepts_python_and_js_host_quirks_and_rejects_wrong_key() {
        let key = b"secret-key";
        let hash = content_hash(b"");
        assert_eq!(hash, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        for signed_host in ["127.0.0.1:8443", "127.0.0.1:8443/"] {
            let sig = sign(
                key,
                &format!(
                    "POST\n/identities?api-version=2023-10-01\nThu, 26 Nov 2026 11:57:41 GMT;{signed_host};{hash}"
                ),
            );
            let auth = format!(
                "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}"
            );
            assert_eq!(
                verify(&request(&auth, "127.0.0.1:8443", &hash), key, now()),
                Ok(())
            );
            assert!(
                verify(
                    &request(&auth, "127.0.0.1:8443", &hash),
                    b"other-key",
                    now()
                )
                .is_err()
            );
        }
        let js_sig = sign(
            key,
            &format!(
                "POST\n/identities?api-version=2023-10-01\nThu, 26 Nov 2026 11:57:41 GMT;127.0.0.1:8443:8443;{hash}"
            ),
        );
        let auth = format!(
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={js_sig}"
        );
        assert_eq!(
            verify(&request(&auth, "127.0.0.1:8443:8443", &hash), key, now()),
            Ok(())
        );
        assert_eq!(
            verify(&request(&auth, "127.0.0.1:8443", &hash), key, now()),
            Ok(())
        );
    }

    #[test]
    fn older_sdks_sign_the_date_header() {
        let key = b"k";
        let hash = content_hash(b"");
        let date = "Thu, 26 Nov 2026 11:57:41 GMT";
        let sig = sign(
            key,
            &format!("POST\n/identities?api-version=2023-10-01\n{date};h:1;{hash}"),
        );
        let auth =
            format!("HMAC-SHA256 SignedHeaders=date;host;x-ms-content-sha256&Signature={sig}");
        let mut req = request(&auth, "h:1", &hash);
        req.ms_date = None;
        assert!(verify(&req, key, now()).is_err(), "no Date header");
        req.date = Some(date);
        assert_eq!(verify(&req, key, now()), Ok(()));
    }

    #[test]
    fn body_must_match_its_hash() {
        let hash = content_hash(b"{}");
        let sig = sign(b"k", "irrelevant");
        let auth =
            format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}");
        let err = verify(&request(&auth, "h", &hash), b"k", now())
            .expect_err("body is empty, hash is of {}");
        assert!(err.to_string().contains("does not match the body"));
    }

    /// A request signed over `date` (as `x-ms-date`) with key `k`.
    fn signed_over(date: &str) -> (String, String) {
        let hash = content_hash(b"");
        let sig = sign(
            b"k",
            &format!("POST\n/identities?api-version=2023-10-01\n{date};h;{hash}"),
        );
        (
            format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}"),
            hash,
        )
    }

    #[test]
    fn the_signed_date_must_be_within_fifteen_minutes_either_way() {
        let (auth, hash) = signed_over(SIGNED_AT);
        let req = request(&auth, "h", &hash);
        for offset in [-MAX_CLOCK_SKEW_SECS, 0, MAX_CLOCK_SKEW_SECS] {
            assert_eq!(verify(&req, b"k", now() + offset), Ok(()), "{offset}s");
        }
        for offset in [
            -MAX_CLOCK_SKEW_SECS - 1,
            MAX_CLOCK_SKEW_SECS + 1,
            30 * 24 * 3600,
            -24 * 3600,
        ] {
            let refusal = verify(&req, b"k", now() + offset).expect_err("stale");
            assert!(
                matches!(
                    refusal,
                    Refusal::Date {
                        header: "x-ms-date",
                        ..
                    }
                ),
                "{offset}s: {refusal}"
            );
        }
    }

    #[test]
    fn a_signed_date_that_is_not_an_http_date_is_refused() {
        for date in [
            "yesterday",
            "",
            "2026-11-26T11:57:41Z",
            "Thu, 26 Nov 2026 11:57:41 +0100",
        ] {
            let (auth, hash) = signed_over(date);
            let mut req = request(&auth, "h", &hash);
            req.ms_date = Some(date);
            let refusal = verify(&req, b"k", now()).expect_err("not an HTTP date");
            assert!(
                matches!(refusal, Refusal::Date { .. }),
                "{date:?}: {refusal}"
            );
        }
    }

    #[test]
    fn a_wrong_signature_is_refused_as_such_whatever_its_date() {
        let (auth, hash) = signed_over(SIGNED_AT);
        let refusal =
            verify(&request(&auth, "h", &hash), b"other", now() + 86_400).expect_err("wrong key");
        assert!(matches!(refusal, Refusal::Signature(_)), "{refusal}");
    }
}
