//! [`forward_model_methods!`](crate::forward_model_methods): the [`Model`](crate::Model)
//! methods a wrapper passes on to the model it wraps, written once.

/// Writes, inside an `impl Model for Wrapper` block, the listed [`Model`](crate::Model) methods
/// as calls to the wrapped model in the field `$field`, so a middleware writes only the methods
/// it changes.
///
/// - `forward_model_methods!(inner: id, capabilities, info)` passes each call on unchanged.
/// - `forward_model_methods!(inner through around: loglikelihood, hidden_states)` passes each
///   call on through the wrapper's own method
///   `async fn around<T, F, Fut>(&self, method: &'static str, call: F) -> Result<T, ModelError>`
///   (`F: Fn() -> Fut`, `Fut: Future<Output = Result<T, ModelError>>`), which may call `call`
///   once (a limit, a meter) or several times (retries). Synchronous methods (`id`,
///   `capabilities`, `info`, `steered`) are always passed on unchanged.
///
/// The methods: `id`, `capabilities`, `info`, `steered`, `generate`, `next_token_distribution`,
/// `loglikelihood`, `hidden_states`, `sample_answers`, `option_probabilities`. The block must be
/// an `#[async_trait]` impl (the macro writes the asynchronous methods in the form
/// `async_trait` gives them).
///
/// ```
/// use async_trait::async_trait;
/// use psyche_core::{GenerateRequest, GenerateResponse, Model, ModelError};
///
/// /// Logs every generation, passes everything else on.
/// struct Logged<M>(M);
///
/// #[async_trait]
/// impl<M: Model> Model for Logged<M> {
///     psyche_core::forward_model_methods!(0: id, capabilities, info, steered,
///         next_token_distribution, loglikelihood, hidden_states, sample_answers,
///         option_probabilities);
///     async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
///         tracing::info!(model = self.0.id(), "generate");
///         self.0.generate(request).await
///     }
/// }
/// ```
#[macro_export]
macro_rules! forward_model_methods {
    ($field:tt through $around:ident: $($method:ident),+ $(,)?) => {
        $( $crate::__forward_model_method!($field, [$around], $method); )+
    };
    ($field:tt: $($method:ident),+ $(,)?) => {
        $( $crate::__forward_model_method!($field, [], $method); )+
    };
}

/// One method of [`forward_model_methods!`](crate::forward_model_methods).
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_model_method {
    ($field:tt, [$($around:ident)?], id) => {
        fn id(&self) -> &str {
            self.$field.id()
        }
    };
    ($field:tt, [$($around:ident)?], capabilities) => {
        fn capabilities(&self) -> $crate::Capabilities {
            self.$field.capabilities()
        }
    };
    ($field:tt, [$($around:ident)?], info) => {
        fn info(&self) -> $crate::ModelInfo {
            self.$field.info()
        }
    };
    ($field:tt, [$($around:ident)?], steered) => {
        fn steered(
            &self,
            steering: &$crate::Steering,
        ) -> ::core::result::Result<::std::sync::Arc<dyn $crate::Model>, $crate::ModelError> {
            self.$field.steered(steering)
        }
    };
    ($field:tt, [$($around:ident)?], generate) => {
        $crate::__forward_model_method!(@async $field, [$($around)?], generate,
            (request: &'life1 $crate::GenerateRequest), (request),
            $crate::GenerateResponse);
    };
    ($field:tt, [$($around:ident)?], next_token_distribution) => {
        $crate::__forward_model_method!(@async $field, [$($around)?], next_token_distribution,
            (messages: &'life1 $crate::Conversation, top_k: u32), (messages, top_k),
            $crate::TokenDistribution);
    };
    ($field:tt, [$($around:ident)?], loglikelihood) => {
        fn loglikelihood<'life0, 'life1, 'life2, 'async_trait>(
            &'life0 self,
            context: &'life1 $crate::Conversation,
            continuation: &'life2 str,
        ) -> ::core::pin::Pin<Box<dyn ::core::future::Future<
            Output = ::core::result::Result<$crate::LogLikelihood, $crate::ModelError>,
        > + ::core::marker::Send + 'async_trait>>
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            'life2: 'async_trait,
            Self: 'async_trait,
        {
            $crate::__forward_model_method!(@body self, $field, [$($around)?], loglikelihood,
                (context, continuation))
        }
    };
    ($field:tt, [$($around:ident)?], hidden_states) => {
        $crate::__forward_model_method!(@async $field, [$($around)?], hidden_states,
            (messages: &'life1 $crate::Conversation), (messages),
            $crate::HiddenStates);
    };
    ($field:tt, [$($around:ident)?], sample_answers) => {
        $crate::__forward_model_method!(@async $field, [$($around)?], sample_answers,
            (messages: &'life1 $crate::Conversation, k: u32, temperature: f32, max_tokens: u32,
             seed: u64),
            (messages, k, temperature, max_tokens, seed),
            ::std::vec::Vec<::std::string::String>);
    };
    ($field:tt, [$($around:ident)?], option_probabilities) => {
        fn option_probabilities<'life0, 'life1, 'life2, 'async_trait>(
            &'life0 self,
            messages: &'life1 $crate::Conversation,
            query: &'life2 $crate::OptionQuery,
        ) -> ::core::pin::Pin<Box<dyn ::core::future::Future<
            Output = ::core::result::Result<$crate::OptionProbabilities, $crate::ModelError>,
        > + ::core::marker::Send + 'async_trait>>
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            'life2: 'async_trait,
            Self: 'async_trait,
        {
            $crate::__forward_model_method!(@body self, $field, [$($around)?], option_probabilities,
                (messages, query))
        }
    };
    // An asynchronous method with one borrowed argument besides `self`.
    (@async $field:tt, [$($around:ident)?], $method:ident, ($($param:ident: $ty:ty),*),
     ($($arg:ident),*), $out:ty) => {
        fn $method<'life0, 'life1, 'async_trait>(
            &'life0 self,
            $($param: $ty),*
        ) -> ::core::pin::Pin<Box<dyn ::core::future::Future<
            Output = ::core::result::Result<$out, $crate::ModelError>,
        > + ::core::marker::Send + 'async_trait>>
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            Self: 'async_trait,
        {
            $crate::__forward_model_method!(@body self, $field, [$($around)?], $method, ($($arg),*))
        }
    };
    // `self` is passed in from the method's own expansion: macro hygiene gives the `self` of
    // another expansion another meaning.
    (@body $self:tt, $field:tt, [], $method:ident, ($($arg:ident),*)) => {
        $self.$field.$method($($arg),*)
    };
    (@body $self:tt, $field:tt, [$around:ident], $method:ident, ($($arg:ident),*)) => {
        Box::pin(async move {
            $self
                .$around(stringify!($method), || $self.$field.$method($($arg),*))
                .await
        })
    };
}
