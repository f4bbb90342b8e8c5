//! Who is calling the read and write API (SPEC §12): `[[api.tokens]]` with roles, plus
//! `read_tokens_sha256` as unscoped readers. With no token of either kind configured the
//! read API is open and writes are refused. Scopes are parsed and kept on the token;
//! filtering by them is the next step of SPEC §12.

use axum::http::{HeaderMap, header};
use probity_config::Role;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::state::AppState;

/// The caller a token identifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The `[[api.tokens]]` id; `None` for a `read_tokens_sha256` token or an open read API.
    pub id: Option<String>,
    pub role: Role,
}

/// Checks the bearer token against every configured hash (in constant time, without
/// stopping early) and that its role includes `needed`.
pub fn require(state: &AppState, headers: &HeaderMap, needed: Role) -> Result<Caller, ApiError> {
    let config = state.config();
    let api = &config.api;
    if !api.needs_token() {
        if needed == Role::Reader {
            return Ok(Caller { id: None, role: Role::Reader });
        }
        return Err(ApiError::Forbidden(format!(
            "this needs a {} token; add one to [[api.tokens]] (probity-collector new-token ID --role {})",
            needed.as_str(),
            needed.as_str()
        )));
    }
    let token = bearer(headers).ok_or_else(|| {
        let kind = if needed == Role::Reader { "read" } else { needed.as_str() };
        ApiError::Unauthorized(format!("this API needs Authorization: Bearer <{kind} token>"))
    })?;
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut found: Option<Caller> = None;
    for t in &api.tokens {
        if bool::from(digest.ct_eq(&t.token_sha256)) {
            found = Some(Caller { id: Some(t.id.to_string()), role: t.role });
        }
    }
    let mut reader = subtle::Choice::from(0);
    for h in &api.read_tokens_sha256 {
        reader |= digest.ct_eq(h);
    }
    let caller = match found {
        Some(c) => c,
        None if bool::from(reader) => Caller { id: None, role: Role::Reader },
        None => return Err(ApiError::Unauthorized("unknown token".into())),
    };
    if caller.role < needed {
        return Err(ApiError::Forbidden(format!(
            "token {} has role {}; this needs {}",
            caller.id.as_deref().unwrap_or("(read token)"),
            caller.role.as_str(),
            needed.as_str()
        )));
    }
    Ok(caller)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}
