//! [`Collect`]: a body read whole, up to a limit, before it is hashed and signed (the signing
//! layers of RFC 9421 need the whole content before the headers leave).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::Body;
use pin_project_lite::pin_project;

/// A body read whole: its data, and its trailers if it had any.
pub(super) struct Collected {
    pub(super) data: Bytes,
    pub(super) trailers: Option<http::HeaderMap>,
}

/// Why a body was not read whole.
pub(super) enum CollectError<E> {
    /// Longer than the limit (by its size hint before any read, or by what it sent).
    TooLong,
    /// The body itself failed.
    Body(E),
}

pin_project! {
    /// Reads `body` to its end: data frames are gathered up to `limit` bytes, trailers kept,
    /// other frames passed over.
    pub(super) struct Collect<B> {
        #[pin]
        body: B,
        data: BytesMut,
        trailers: Option<http::HeaderMap>,
        limit: u64,
        too_long: bool,
    }
}

impl<B: Body<Data = Bytes>> Collect<B> {
    /// A body whose size hint already says it is longer than `limit` fails at once, unread.
    pub(super) fn new(body: B, limit: u64) -> Self {
        let too_long = body.size_hint().lower() > limit;
        Collect { body, data: BytesMut::new(), trailers: None, limit, too_long }
    }
}

impl<B: Body<Data = Bytes>> Future for Collect<B> {
    type Output = Result<Collected, CollectError<B::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if *this.too_long {
            return Poll::Ready(Err(CollectError::TooLong));
        }
        loop {
            match ready!(this.body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(chunk) => {
                        if (this.data.len() + chunk.len()) as u64 > *this.limit {
                            return Poll::Ready(Err(CollectError::TooLong));
                        }
                        this.data.extend_from_slice(&chunk);
                    }
                    Err(frame) => {
                        if let Ok(more) = frame.into_trailers() {
                            this.trailers.get_or_insert_with(http::HeaderMap::new).extend(more);
                        }
                    }
                },
                Some(Err(err)) => return Poll::Ready(Err(CollectError::Body(err))),
                None => {
                    let data = std::mem::take(this.data).freeze();
                    return Poll::Ready(Ok(Collected { data, trailers: this.trailers.take() }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, Full, StreamBody};

    fn stream(chunks: &[&'static str]) -> impl Body<Data = Bytes, Error = std::io::Error> {
        let frames: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = chunks
            .iter()
            .map(|chunk| Ok(http_body::Frame::data(Bytes::from_static(chunk.as_bytes()))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole_with_its_trailers() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let body = Full::new(Bytes::from_static(b"hello"))
            .with_trailers(async move { Some(Ok::<_, std::convert::Infallible>(trailers)) });
        let Ok(collected) = Collect::new(body, 5).await else { panic!("within the limit") };
        assert_eq!(collected.data, "hello");
        assert_eq!(collected.trailers.unwrap()["grpc-status"], "0");
    }

    #[tokio::test]
    async fn a_longer_body_fails_by_its_size_hint_or_by_what_it_sends() {
        let hinted = Collect::new(Full::new(Bytes::from_static(b"hello")), 4).await;
        assert!(matches!(hinted, Err(CollectError::TooLong)));
        let streamed = Collect::new(stream(&["abc", "de"]), 4).await;
        assert!(matches!(streamed, Err(CollectError::TooLong)));
        let Ok(within) = Collect::new(stream(&["abc", "d"]), 4).await else { panic!("within the limit") };
        assert_eq!(within.data, "abcd");
        assert!(within.trailers.is_none());
    }

    #[tokio::test]
    async fn a_failing_body_fails_with_its_error() {
        let frames = vec![Err::<http_body::Frame<Bytes>, _>(std::io::Error::other("reset"))];
        let failed = Collect::new(StreamBody::new(futures_util::stream::iter(frames)), 4).await;
        assert!(matches!(failed, Err(CollectError::Body(err)) if err.to_string() == "reset"));
    }
}
