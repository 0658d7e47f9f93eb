//! The language of a request: `?lang=` first, then `Accept-Language`, then English.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::i18n::Lang;

/// The language a page is rendered in.
pub struct PageLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let explicit = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.strip_prefix("lang="))
                .find_map(Lang::from_tag)
        });
        let lang = explicit.unwrap_or_else(|| {
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(Lang::negotiate)
                .unwrap_or(Lang::En)
        });
        Ok(PageLang(lang))
    }
}
