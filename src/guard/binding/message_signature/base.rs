//! The signature base (RFC 9421 §2.5): the covered components' values, one line each, then
//! `@signature-params`. One builder for both directions: the verifier rebuilds the base of a
//! request it checks (and the client, of a response), the signer builds the base it signs.

use base64::Engine as _;
use http::{HeaderMap, Method, StatusCode, Uri};
use sfv::{BareItem, Dictionary, FieldType as _, Item, List, ListEntry, Parser};

use super::input::{combined, Reason, SignedInput};
use super::query;

/// What a request's components are made of: its method, URI and fields, and its external origin.
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

/// The message whose base is built: a request, or a response (its status and fields) with the
/// request it answers, whose components the response covers with `;req` (RFC 9421 §2.4).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signed<'a> {
    Request(Message<'a>),
    Response { status: StatusCode, headers: &'a HeaderMap, request: Option<Message<'a>> },
}

impl<'a> Signed<'a> {
    /// The request whose derived components are covered (`;req` in a response).
    fn request(&self, req: bool) -> Result<&Message<'a>, Reason> {
        match (self, req) {
            (Signed::Request(message), false) => Ok(message),
            (Signed::Request(_), true) => Err("the req parameter belongs to a response's signature"),
            (Signed::Response { request: Some(request), .. }, true) => Ok(request),
            (Signed::Response { request: None, .. }, true) => Err("the request of the response is not known"),
            (Signed::Response { .. }, false) => Err("a response covers a request's component only with req"),
        }
    }

    /// The fields a field component is read from.
    fn fields(&self, req: bool) -> Result<&'a HeaderMap, Reason> {
        match (self, req) {
            (Signed::Request(message), false) => Ok(message.headers),
            (Signed::Response { headers, .. }, false) => Ok(headers),
            _ => self.request(req).map(|request| request.headers),
        }
    }
}

/// The `req` flag of a component (RFC 9421 §2.4): a boolean `true`, or absent.
fn req_flag(component: &Item) -> Result<bool, Reason> {
    match component.params.get("req") {
        None => Ok(false),
        Some(value) if value.as_boolean() == Some(true) => Ok(true),
        Some(_) => Err("the req parameter is not a true boolean"),
    }
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

/// The signature base of a request's signature `signed` over `message`.
pub(crate) fn signature_base(message: &Message<'_>, signed: &SignedInput) -> Result<String, Reason> {
    base_of(&Signed::Request(*message), &signed.components, &signed.component_texts, &signed.params_text)
}

/// The signature base of `components` over `message`, ending with `@signature-params`:
/// `params_text` (the serialized inner list of the components and the signature parameters).
/// `texts` are the components serialized, one for each (parsed once, used twice).
pub(crate) fn base_of(
    message: &Signed<'_>,
    components: &[Item],
    texts: &[String],
    params_text: &str,
) -> Result<String, Reason> {
    if components.len() != texts.len() {
        return Err("a component identifier cannot be serialized");
    }
    let mut base = String::new();
    for (component, text) in components.iter().zip(texts) {
        let BareItem::String(name) = &component.bare_item else {
            return Err("a component identifier is not a string");
        };
        let name = name.as_str();
        if name != name.to_ascii_lowercase() {
            return Err("a component name is not lowercase");
        }
        let req = req_flag(component)?;
        let value = match (name.strip_prefix('@'), message) {
            (Some("status"), Signed::Response { status, .. }) if !req => status.as_str().to_owned(),
            (Some("status"), _) => return Err("@status is a response's own component"),
            (Some(derived), _) => derived_value(message.request(req)?, derived, component)?,
            (None, _) => field_value(message.fields(req)?, name, component)?,
        };
        if value.contains(['\n', '\r']) {
            return Err("a component value holds a line break");
        }
        base.push_str(text);
        base.push_str(": ");
        base.push_str(&value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(params_text);
    Ok(base)
}

fn derived_value(message: &Message<'_>, name: &str, component: &Item) -> Result<String, Reason> {
    let mut query_name = None;
    for (param, value) in &component.params {
        match (name, param.as_str()) {
            ("query-param", "name") => {
                query_name = Some(value.as_string().ok_or("the name parameter is not a string")?.as_str())
            }
            (_, "req") => {} // which message: the caller's concern
            _ => return Err("a derived component has a parameter it does not take"),
        }
    }
    if matches!(name, "target-uri" | "authority" | "scheme") && message.authority.is_empty() {
        return Err("the request's origin is unknown");
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
        // `@signature-params` is not a component to cover.
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
            "req" => {} // which message: the caller's concern
            // `tr` (trailers) is not supported.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> Vec<Item> {
        let list: List = Parser::new(text).parse().unwrap();
        list.into_iter()
            .map(|entry| match entry {
                ListEntry::Item(item) => item,
                ListEntry::InnerList(_) => panic!("an item"),
            })
            .collect()
    }

    #[test]
    fn req_and_status_belong_to_responses() {
        let request = http::Request::post("https://example.com/foo?a=1")
            .header("signature", "sig=:AAAA:")
            .body(())
            .unwrap();
        let message = Message {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            scheme: "https",
            authority: "example.com",
        };
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "text/plain".parse().unwrap());
        let response = Signed::Response { status: StatusCode::OK, headers: &headers, request: Some(message) };
        let base = |signed: &Signed<'_>, text: &str| {
            let components = items(text);
            let texts: Vec<String> = components.iter().map(|component| component.serialize()).collect();
            base_of(signed, &components, &texts, "()")
        };

        let covered =
            r#""@status", "content-type", "@method";req, "@target-uri";req, "signature";req;key="sig""#;
        assert_eq!(
            base(&response, covered).unwrap(),
            "\"@status\": 200\n\"content-type\": text/plain\n\"@method\";req: POST\n\"@target-uri\";req: \
             https://example.com/foo?a=1\n\"signature\";req;key=\"sig\": :AAAA:\n\"@signature-params\": ()"
        );
        // A request's components in a response without `req`, `@status` in a request, `req` in a
        // request, `req` that is not `true`, `req` without the request: refused.
        assert!(base(&response, r#""@method""#).is_err());
        assert!(base(&Signed::Request(message), r#""@status""#).is_err());
        assert!(base(&Signed::Request(message), r#""@method";req"#).is_err());
        assert!(base(&response, r#""@method";req=?0"#).is_err());
        assert!(base(&response, r#""@method";req="yes""#).is_err());
        let alone = Signed::Response { status: StatusCode::OK, headers: &headers, request: None };
        assert!(base(&alone, r#""@method";req"#).is_err());
        assert!(base(&alone, r#""@status""#).is_ok());
    }
}
