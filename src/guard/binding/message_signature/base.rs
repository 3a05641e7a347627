//! The signature base (RFC 9421 §2.5): the covered components' values, one line each, then
//! `@signature-params`.

use base64::Engine as _;
use http::{HeaderMap, Method, Uri};
use sfv::{BareItem, Dictionary, FieldType as _, Item, List, ListEntry, Parser};

use super::input::{combined, Reason, SignedInput};
use super::query;

/// What the base is made of: the request's method, URI and fields, and its external origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    /// The scheme of the target URI, lowercase.
    pub(crate) scheme: &'a str,
    /// The authority of the target URI, lowercase, without a default port.
    pub(crate) authority: &'a str,
}

/// Structured fields whose type is known (for the `sf` and `key` parameters): dictionaries.
const DICTIONARY_FIELDS: [&str; 8] = [
    "signature",
    "signature-input",
    "accept-signature",
    "content-digest",
    "repr-digest",
    "want-content-digest",
    "want-repr-digest",
    "priority",
];
/// Structured fields whose type is known: lists.
const LIST_FIELDS: [&str; 2] = ["cache-status", "proxy-status"];
/// Structured fields whose type is known: items.
const ITEM_FIELDS: [&str; 1] = ["client-cert"];

/// The signature base of `signed` over `message`.
pub(crate) fn signature_base(message: &Message<'_>, signed: &SignedInput) -> Result<String, Reason> {
    let mut base = String::new();
    for (component, text) in signed.components.iter().zip(&signed.component_texts) {
        let BareItem::String(name) = &component.bare_item else {
            return Err("a component identifier is not a string");
        };
        let name = name.as_str();
        if name != name.to_ascii_lowercase() {
            return Err("a component name is not lowercase");
        }
        let value = if let Some(derived) = name.strip_prefix('@') {
            derived_value(message, derived, component)?
        } else {
            field_value(message.headers, name, component)?
        };
        base.push_str(text);
        base.push_str(": ");
        base.push_str(&value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(&signed.params_text);
    Ok(base)
}

fn derived_value(message: &Message<'_>, name: &str, component: &Item) -> Result<String, Reason> {
    let mut query_name = None;
    for (param, value) in &component.params {
        match (name, param.as_str()) {
            ("query-param", "name") => {
                query_name = Some(value.as_string().ok_or("the name parameter is not a string")?.as_str())
            }
            _ => return Err("a derived component has a parameter it does not take"),
        }
    }
    let path = match message.uri.path() {
        "" => "/",
        path => path,
    };
    Ok(match name {
        "method" => message.method.as_str().to_owned(),
        "target-uri" => {
            let query = message.uri.query().map(|query| format!("?{query}")).unwrap_or_default();
            format!("{}://{}{path}{query}", message.scheme, message.authority)
        }
        "authority" => message.authority.to_owned(),
        "scheme" => message.scheme.to_owned(),
        "request-target" => match message.uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        },
        "path" => path.to_owned(),
        "query" => format!("?{}", message.uri.query().unwrap_or("")),
        "query-param" => {
            let wanted = query_name.ok_or("@query-param lacks its name parameter")?;
            query::single_param(message.uri.query().unwrap_or(""), wanted)?
        }
        // `@status` is a response's; `@signature-params` is not a component to cover.
        _ => return Err("the derived component is not known or not a request's"),
    })
}

fn field_value(headers: &HeaderMap, name: &str, component: &Item) -> Result<String, Reason> {
    let (mut sf, mut bs, mut key) = (false, false, None);
    for (param, value) in &component.params {
        match param.as_str() {
            "sf" if value.as_boolean() == Some(true) => sf = true,
            "bs" if value.as_boolean() == Some(true) => bs = true,
            "key" => key = Some(value.as_string().ok_or("the key parameter is not a string")?.as_str()),
            // `req` and `tr` belong to responses and trailers, which a request's check never has.
            _ => return Err("a field component has a parameter that is not supported"),
        }
    }
    if usize::from(sf) + usize::from(bs) + usize::from(key.is_some()) > 1 {
        return Err("a field component combines sf, bs and key");
    }
    if bs {
        let mut lines = Vec::new();
        for value in headers.get_all(name) {
            let text = trim(value.as_bytes());
            lines.push(format!(":{}:", base64::engine::general_purpose::STANDARD.encode(text)));
        }
        if lines.is_empty() {
            return Err("a covered field is missing");
        }
        return Ok(lines.join(", "));
    }
    let value = combined(headers, name)?.ok_or("a covered field is missing")?;
    if let Some(key) = key {
        let dictionary: Dictionary =
            Parser::new(&value).parse().map_err(|_| "a covered field is not a dictionary")?;
        let member = dictionary.get(key).ok_or("a covered dictionary member is missing")?;
        return match member {
            ListEntry::Item(item) => Ok(item.serialize()),
            inner => List::from([inner.clone()]).serialize().ok_or("a covered member cannot be serialized"),
        };
    }
    if sf {
        let text = if DICTIONARY_FIELDS.contains(&name) {
            Parser::new(&value).parse::<Dictionary>().ok().and_then(|value| value.serialize())
        } else if LIST_FIELDS.contains(&name) {
            Parser::new(&value).parse::<List>().ok().and_then(|value| value.serialize())
        } else if ITEM_FIELDS.contains(&name) {
            Parser::new(&value).parse::<Item>().ok().map(|value| value.serialize())
        } else {
            return Err("the structured type of a covered field is not known");
        };
        return text.ok_or("a covered structured field is malformed");
    }
    Ok(value)
}

/// A field line without its leading and trailing whitespace.
fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |end| end + 1);
    &bytes[start..end.max(start)]
}
