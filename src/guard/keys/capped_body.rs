//! A response body read up to a size cap: the one reader of the key sources that call a server
//! (JWKS and discovery documents, introspection answers), so a huge or endless answer costs at
//! most the cap.

/// Why a capped body could not be read.
pub(crate) enum CappedBodyError {
    /// The body (announced or received) is larger than the cap.
    TooLarge,
    /// The connection failed while reading.
    Request(reqwest::Error),
}

/// The body of `response`, at most `limit` bytes: refused at once when `Content-Length` says it
/// is larger, else read chunk by chunk and refused as soon as it grows past the cap.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, CappedBodyError> {
    if response.content_length().is_some_and(|len| len > limit as u64) {
        return Err(CappedBodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(CappedBodyError::Request)? {
        if body.len() + chunk.len() > limit {
            return Err(CappedBodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
