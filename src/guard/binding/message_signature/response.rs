//! A signed response checked by the client that sent the request (RFC 9421 §2.4, §3.2): the
//! signature with the expected label or tag, covering what the client requires, by the
//! server's key, recent, over the response and the request it answers.

use http::{HeaderMap, StatusCode};
use sfv::{FieldType as _, Item};

use super::base::{self, Message, Signed};
use super::input::{self, Reason};
use super::key::SignatureKey;

/// What the client expects of a response's signature.
#[derive(Debug, Clone)]
pub(crate) struct ResponsePolicy {
    pub(crate) key: SignatureKey,
    /// Components the signature must cover (compared by name and parameters, in any order).
    pub(crate) required: Vec<Item>,
    pub(crate) tag: Option<String>,
    pub(crate) label: Option<String>,
    pub(crate) max_age: i64,
    pub(crate) leeway: i64,
}

/// Whether two component identifiers name the same component (parameters in any order).
pub(crate) fn same_component(a: &Item, b: &Item) -> bool {
    let params = |item: &Item| {
        let mut params: Vec<(String, String)> = item
            .params
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), Item::new(value.clone()).serialize()))
            .collect();
        params.sort();
        params
    };
    a.bare_item == b.bare_item && params(a) == params(b)
}

impl ResponsePolicy {
    /// Checks the signature of the response (`status`, `headers`) to `request` as of `now`.
    pub(crate) fn check(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        request: Message<'_>,
        now: i64,
    ) -> Result<(), Reason> {
        if !input::present(headers) {
            return Err("the response carries no signature");
        }
        let signatures = input::parse(headers)?;
        let signed = signatures
            .iter()
            .find(|signed| {
                self.label.as_deref().is_none_or(|label| label == signed.label)
                    && self.tag.as_deref().is_none_or(|tag| signed.tag.as_deref() == Some(tag))
            })
            .ok_or("no response signature with the expected label or tag")?;
        for required in &self.required {
            if !signed.components.iter().any(|item| same_component(item, required)) {
                return Err("the response signature does not cover a required component");
            }
        }
        let created = signed.created.ok_or("the response signature has no created parameter")?;
        if created > now.saturating_add(self.leeway) {
            return Err("the response signature was created in the future");
        }
        if now.saturating_sub(created) > self.max_age {
            return Err("the response signature is too old");
        }
        if signed.expires.is_some_and(|expires| expires <= now) {
            return Err("the response signature has expired");
        }
        if signed.alg.as_deref().is_some_and(|alg| alg != self.key.algorithm().name()) {
            return Err("the alg parameter disagrees with the key");
        }
        let message = Signed::Response { status, headers, request: Some(request) };
        let base = base::base_of(&message, &signed.components, &signed.component_texts, &signed.params_text)?;
        if !self.key.verify(base.as_bytes(), &signed.signature) {
            return Err("the response signature does not verify");
        }
        Ok(())
    }
}
