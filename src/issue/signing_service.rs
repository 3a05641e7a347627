//! [`signing_service!`]: the tower plumbing the two signing layers share (RFC 9421): the
//! service type that holds the inner service and the layer's configuration, its `Debug` (the
//! signer, never a key), `get_ref` / `get_mut` / `into_inner`, and the `Layer` impl.

/// Defines `$service<S> { inner: S, config: Arc<Config> }` for `$layer { config: Arc<Config> }`,
/// with `Config` the calling module's own (which has a `signer` field); `$what` names the wrapped
/// service in the accessors' documentation.
macro_rules! signing_service {
    ($(#[$doc:meta])* $layer:ident => $service:ident, $what:literal) => {
        impl<S> tower_layer::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> Self::Service {
                $service { inner, config: std::sync::Arc::clone(&self.config) }
            }
        }

        $(#[$doc])*
        #[derive(Clone)]
        pub struct $service<S> {
            inner: S,
            config: std::sync::Arc<Config>,
        }

        impl<S: std::fmt::Debug> std::fmt::Debug for $service<S> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($service))
                    .field("inner", &self.inner)
                    .field("signer", &self.config.signer)
                    .finish_non_exhaustive()
            }
        }

        impl<S> $service<S> {
            #[doc = concat!("The wrapped ", $what, ".")]
            pub fn get_ref(&self) -> &S {
                &self.inner
            }

            #[doc = concat!("The wrapped ", $what, ", mutably.")]
            pub fn get_mut(&mut self) -> &mut S {
                &mut self.inner
            }

            #[doc = concat!("The wrapped ", $what, ".")]
            pub fn into_inner(self) -> S {
                self.inner
            }
        }
    };
}

pub(super) use signing_service;
