//! The `Signature-Input` and `Signature` fields (RFC 9421 §4), read as RFC 9651 structured
//! fields with `sfv`.

use http::HeaderMap;
use sfv::{BareItem, Dictionary, FieldType as _, InnerList, Item, List, ListEntry, Parser};

/// Why a signature is refused (the audit's reason; the client only sees the code).
pub(crate) type Reason = &'static str;

/// At most this many signatures are looked at in one request.
const MAX_SIGNATURES: usize = 8;
/// At most this many components in one signature.
const MAX_COMPONENTS: usize = 64;

/// One signature of a request: its label, what it covers, its parameters and its bytes.
#[derive(Debug, Clone)]
pub(crate) struct SignedInput {
    pub(crate) label: String,
    /// The covered component identifiers, in order.
    pub(crate) components: Vec<Item>,
    /// Each identifier serialized (its line's start in the signature base), in the same order.
    pub(crate) component_texts: Vec<String>,
    /// The serialized inner list: the value of `@signature-params`.
    pub(crate) params_text: String,
    pub(crate) created: Option<i64>,
    pub(crate) expires: Option<i64>,
    pub(crate) nonce: Option<String>,
    pub(crate) alg: Option<String>,
    pub(crate) keyid: Option<String>,
    pub(crate) tag: Option<String>,
    pub(crate) signature: Vec<u8>,
}

/// The field lines of `name`, combined with `, ` (RFC 9110 §5.3); `None` when there is none.
pub(crate) fn combined(headers: &HeaderMap, name: &str) -> Result<Option<String>, Reason> {
    let mut out: Option<String> = None;
    for value in headers.get_all(name) {
        let value = value.to_str().map_err(|_| "a signature field is not visible ASCII")?;
        match &mut out {
            Some(text) => {
                text.push_str(", ");
                text.push_str(value.trim());
            }
            None => out = Some(value.trim().to_owned()),
        }
    }
    Ok(out)
}

/// Whether the request carries a signature at all.
pub(crate) fn present(headers: &HeaderMap) -> bool {
    headers.contains_key("signature-input") || headers.contains_key("signature")
}

/// Finds a label given twice in a dictionary field. RFC 9651 keeps the last one; a request
/// whose signature fields name a label twice is refused instead (a second signature under the
/// same label can only be an injection).
struct DuplicateLabels(std::collections::HashSet<String>);

#[derive(Debug)]
struct Duplicate;

impl std::fmt::Display for Duplicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a label is given twice")
    }
}

impl std::error::Error for Duplicate {}

impl<'de> sfv::visitor::DictionaryVisitor<'de> for DuplicateLabels {
    type Out = ();
    type Error = Duplicate;

    fn entry(&mut self, key: &'de sfv::KeyRef) -> Result<impl sfv::visitor::EntryVisitor<'de>, Duplicate> {
        if self.0.insert(key.as_str().to_owned()) {
            Ok(sfv::visitor::Ignored)
        } else {
            Err(Duplicate)
        }
    }

    fn finish(self) -> Result<(), Duplicate> {
        Ok(())
    }
}

fn unique_labels(field: &str) -> Result<(), Reason> {
    Parser::new(field)
        .parse_dictionary_with_visitor(DuplicateLabels(std::collections::HashSet::new()))
        .map_err(|_| "a signature field is malformed or names a label twice")
}

/// The labels of the `Signature` field (at most [`MAX_SIGNATURES`]); none when the field is
/// missing, malformed or names a label twice.
pub(crate) fn signature_labels(headers: &HeaderMap) -> Vec<String> {
    let Ok(Some(field)) = combined(headers, "signature") else {
        return Vec::new();
    };
    if unique_labels(&field).is_err() {
        return Vec::new();
    }
    match Parser::new(&field).parse::<Dictionary>() {
        Ok(dictionary) => dictionary.keys().take(MAX_SIGNATURES).map(|key| key.as_str().to_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Reads every signature of the request (both fields must be there).
pub(crate) fn parse(headers: &HeaderMap) -> Result<Vec<SignedInput>, Reason> {
    let input = combined(headers, "signature-input")?.ok_or("the Signature-Input field is missing")?;
    let signature = combined(headers, "signature")?.ok_or("the Signature field is missing")?;
    unique_labels(&input)?;
    unique_labels(&signature)?;
    let input: Dictionary =
        Parser::new(&input).parse().map_err(|_| "the Signature-Input field is malformed")?;
    let signature: Dictionary =
        Parser::new(&signature).parse().map_err(|_| "the Signature field is malformed")?;
    if input.len() > MAX_SIGNATURES {
        return Err("too many signatures");
    }
    let mut out = Vec::with_capacity(input.len());
    for (label, entry) in &input {
        let ListEntry::InnerList(list) = entry else {
            return Err("a Signature-Input member is not an inner list");
        };
        let bytes = match signature.get(label) {
            Some(ListEntry::Item(Item { bare_item: BareItem::ByteSequence(bytes), .. })) => bytes.clone(),
            Some(_) => return Err("a Signature member is not a byte sequence"),
            None => continue, // a signature input without a signature is not a signature
        };
        out.push(signed_input(label.as_str(), list, bytes)?);
    }
    Ok(out)
}

fn signed_input(label: &str, list: &InnerList, signature: Vec<u8>) -> Result<SignedInput, Reason> {
    if list.items.len() > MAX_COMPONENTS {
        return Err("a signature covers too many components");
    }
    let mut components = Vec::with_capacity(list.items.len());
    let mut component_texts: Vec<String> = Vec::with_capacity(list.items.len());
    for item in &list.items {
        if !matches!(item.bare_item, BareItem::String(_)) {
            return Err("a component identifier is not a string");
        }
        // Serialized once: what tells two identifiers apart, and the base's line.
        let text = item.serialize();
        if component_texts.contains(&text) {
            return Err("a component is covered twice");
        }
        component_texts.push(text);
        components.push(item.clone());
    }
    let params_text = List::from([ListEntry::InnerList(list.clone())])
        .serialize()
        .ok_or("the signature parameters cannot be serialized")?;
    let mut signed = SignedInput {
        label: label.to_owned(),
        components,
        component_texts,
        params_text,
        created: None,
        expires: None,
        nonce: None,
        alg: None,
        keyid: None,
        tag: None,
        signature,
    };
    for (name, value) in &list.params {
        let integer = || value.as_integer().map(i64::from).ok_or("a signature parameter has the wrong type");
        let string = || {
            value
                .as_string()
                .map(|text| text.as_str().to_owned())
                .ok_or("a signature parameter has the wrong type")
        };
        match name.as_str() {
            "created" => signed.created = Some(integer()?),
            "expires" => signed.expires = Some(integer()?),
            "nonce" => signed.nonce = Some(string()?),
            "alg" => signed.alg = Some(string()?),
            "keyid" => signed.keyid = Some(string()?),
            "tag" => signed.tag = Some(string()?),
            _ => {} // §2.3: other parameters are covered by the signature, and not interpreted
        }
    }
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(input: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("signature-input", input.parse().unwrap());
        headers.insert("signature", signature.parse().unwrap());
        headers
    }

    #[test]
    fn reads_the_rfc_example_and_reserializes_its_parameters() {
        let input = r#"sig-b22=("@authority" "content-digest" "@query-param";name="Pet");created=1618884473;keyid="test-key-rsa-pss";tag="header-example""#;
        let parsed = parse(&headers(input, "sig-b22=:AAAA:")).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(format!("sig-b22={}", parsed[0].params_text), input);
        assert_eq!(parsed[0].created, Some(1618884473));
        assert_eq!(parsed[0].tag.as_deref(), Some("header-example"));
        assert_eq!(parsed[0].signature, vec![0, 0, 0]);
    }

    #[test]
    fn refuses_malformed_and_duplicate_input() {
        assert!(parse(&headers("sig=(\"@method\"", "sig=:AAAA:")).is_err());
        assert!(parse(&headers("sig=(\"@method\" \"@method\")", "sig=:AAAA:")).is_err());
        assert!(parse(&headers("sig=(@method)", "sig=:AAAA:")).is_err());
        assert!(parse(&headers("sig=(\"@method\");created=\"x\"", "sig=:AAAA:")).is_err());
        assert!(parse(&headers("sig=(\"@method\")", "sig=\"text\"")).is_err());
        // Two signatures under one label, in one field line or two.
        assert!(parse(&headers("sig=(\"@method\"), sig=(\"@path\")", "sig=:AAAA:")).is_err());
        assert!(parse(&headers("sig=(\"@method\")", "sig=:AAAA:, sig=:BBBB:")).is_err());
        let mut two_lines = headers("sig=(\"@method\")", "sig=:AAAA:");
        two_lines.append("signature-input", "sig=(\"@path\")".parse().unwrap());
        assert!(parse(&two_lines).is_err());
        assert!(parse(&headers("a=(\"@method\"), b=(\"@path\")", "a=:AAAA:, b=:AAAA:")).is_ok());
    }
}
