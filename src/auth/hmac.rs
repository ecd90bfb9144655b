//! Verification of the access-key signature (`HMAC-SHA256 SignedHeaders=…&Signature=…`) that
//! the identity SDKs put on every request. Pure function of the request parts and the key.
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

/// Checks the request's signature against `key`; `Err` says why it failed.
pub fn verify(request: &SignedRequest<'_>, key: &[u8]) -> Result<(), String> {
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
    let date = if signed_headers.eq_ignore_ascii_case("x-ms-date;host;x-ms-content-sha256") {
        request.ms_date.ok_or("x-ms-date is missing")?
    } else if signed_headers.eq_ignore_ascii_case("date;host;x-ms-content-sha256") {
        request.date.ok_or("Date is missing")?
    } else {
        return Err(format!("unsupported SignedHeaders {signed_headers}"));
    };
    let signature = STANDARD
        .decode(signature.ok_or("Signature is missing")?)
        .map_err(|_| "Signature is not base64")?;
    let claimed_hash = request
        .content_sha256
        .ok_or("x-ms-content-sha256 is missing")?;
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
                return Ok(());
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
                verify(&request(&auth, "127.0.0.1:8443", &hash), key),
                Ok(())
            );
            assert!(verify(&request(&auth, "127.0.0.1:8443", &hash), b"other-key").is_err());
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
            verify(&request(&auth, "127.0.0.1:8443:8443", &hash), key),
            Ok(())
        );
        assert_eq!(
            verify(&request(&auth, "127.0.0.1:8443", &hash), key),
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
        assert!(verify(&req, key).is_err(), "no Date header");
        req.date = Some(date);
        assert_eq!(verify(&req, key), Ok(()));
    }

    #[test]
    fn body_must_match_its_hash() {
        let hash = content_hash(b"{}");
        let sig = sign(b"k", "irrelevant");
        let auth =
            format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}");
        let err =
            verify(&request(&auth, "h", &hash), b"k").expect_err("body is empty, hash is of {}");
        assert!(err.contains("does not match the body"));
    }
}
