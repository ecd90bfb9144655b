//! ACS user access tokens: JWTs minted by the identity API and checked on every chat call.
//! Signing and decoding only; revocation and identity checks live in the `AcsUser` extractor.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::Keys;

/// `scp` of real tokens: a constant 1792 in every decoded token we know of.
const SCP: u32 = 1792;

/// Claims of a user token, named and ordered as in real ACS tokens (api-contract.md §7.1).
///
/// The Python SDK decodes the payload with *standard* base64, so the encoded payload must not
/// contain `-` or `_`. For ASCII JSON that happens only where `>`, `?`, `~` or DEL sit at an
/// offset ≡ 2 (mod 3); none of these claims can contain those characters (ids are GUID-shaped,
/// scopes come from a fixed list), which `minted_payload_is_python_safe` checks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The identity id without its `8:` prefix: `acs:<resourceId>_<uuid>`.
    pub skypeid: String,
    pub scp: u32,
    /// Issue time as a decimal string.
    pub csi: String,
    pub exp: i64,
    #[serde(rename = "acsScope")]
    pub acs_scope: String,
    #[serde(rename = "resourceId")]
    pub resource_id: String,
    #[serde(rename = "resourceLocation")]
    pub resource_location: String,
    pub iat: i64,
    /// Not-before time (seconds). Real ACS tokens carry none and the emulator mints none; it is
    /// read so that a token carrying one is not used early (RFC 7519 §4.1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

impl Claims {
    /// Claims for `raw_id` (`8:acs:…`) with the given scopes, issued at `iat` (seconds) and
    /// valid until `exp` (seconds).
    pub fn new(raw_id: &str, scopes: &[&str], resource_id: &str, iat: i64, exp: i64) -> Self {
        Claims {
            skypeid: raw_id.strip_prefix("8:").unwrap_or(raw_id).to_owned(),
            scp: SCP,
            csi: iat.to_string(),
            exp,
            acs_scope: scopes.join(","),
            resource_id: resource_id.to_owned(),
            resource_location: "unitedstates".to_owned(),
            iat,
            nbf: None,
        }
    }

    /// The identity id the token speaks for (`8:acs:…`).
    pub fn raw_id(&self) -> String {
        format!("8:{}", self.skypeid)
    }

    /// The scopes, split from `acsScope`.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.acs_scope
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// Signs claims into a token (HS256 with the emulator's token secret).
pub fn mint(claims: &Claims, keys: &Keys) -> anyhow::Result<String> {
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(&keys.token_secret),
    )?;
    Ok(token)
}

/// Checks the signature and decodes the claims. Expiry is checked by the caller with the app's
/// clock, so that tests can move time.
pub fn verify(token: &str, keys: &Keys) -> Result<Claims, String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(&keys.token_secret),
        &validation,
    )
    .map(|data| data.claims)
    .map_err(|e| format!("token rejected: {e}"))
}

/// Decodes the claims without checking the signature (`--auth lenient`). Accepts base64url and
/// standard base64, padded or not, as tokens from other tools may use either.
pub fn decode_unverified(token: &str) -> Result<Claims, String> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or("token has no payload segment")?;
    let trimmed = payload.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD.decode(payload))
        .map_err(|_| "token payload is not base64".to_owned())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("token payload is not ACS claims: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_access_key(crate::config::DEFAULT_ACCESS_KEY).expect("default key is base64")
    }

    #[test]
    fn mint_then_verify_round_trips() -> anyhow::Result<()> {
        let claims = Claims::new(
            "8:acs:a1b2c3d4-0000-4000-8000-00000000ac5e_0d6f1c3e-8e4b-4f64-9b59-1f1f0e0c2a11",
            &["chat", "voip"],
            "a1b2c3d4-0000-4000-8000-00000000ac5e",
            1_700_000_000,
            1_700_086_400,
        );
        let token = mint(&claims, &keys())?;
        assert_eq!(verify(&token, &keys()), Ok(claims.clone()));
        assert_eq!(decode_unverified(&token), Ok(claims));
        Ok(())
    }

    #[test]
    fn other_key_is_rejected() -> anyhow::Result<()> {
        let claims = Claims::new("8:acs:x_y", &["chat"], "x", 1, 2);
        let token = mint(&claims, &keys())?;
        let other = Keys::from_access_key("b3RoZXIta2V5")?;
        assert!(verify(&token, &other).is_err());
        Ok(())
    }

    #[test]
    fn minted_payload_is_python_safe() -> anyhow::Result<()> {
        // Python's SDK: base64.b64decode(parts[1] + "=="): `-` and `_` would be dropped.
        for n in 0..500 {
            let id = crate::identifier::new_user_id("a1b2c3d4-0000-4000-8000-00000000ac5e");
            let scopes: &[&str] = if n % 2 == 0 {
                &["chat"]
            } else {
                &["chat", "voip", "chat.join.limited"]
            };
            let token = mint(
                &Claims::new(
                    &id,
                    scopes,
                    "a1b2c3d4-0000-4000-8000-00000000ac5e",
                    1_700_000_000 + n,
                    1_800_000_000 + n * 7,
                ),
                &keys(),
            )?;
            let payload = token.split('.').nth(1).unwrap_or_default();
            assert!(
                !payload.contains(['-', '_']),
                "payload {payload} breaks the Python SDK"
            );
            let padded = format!("{payload}{}", "=".repeat((4 - payload.len() % 4) % 4));
            assert!(STANDARD.decode(padded).is_ok());
        }
        Ok(())
    }
}
