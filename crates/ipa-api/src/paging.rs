//! Pagination parameters: the `limit` every list takes, and the opaque `cursor` that continues a
//! list after the last row of the previous page (base64url of a position's text form, so clients
//! treat it as a token rather than build one).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ipa_kernel::{Keyset, PageLimit, PageRequest};

use crate::error::ApiError;

/// Reads a page request of a list ordered by creation from the `limit` and `cursor` parameters.
pub(crate) fn page_request(
    limit: Option<u32>,
    cursor: Option<String>,
) -> Result<PageRequest, ApiError> {
    page_request_with(limit, cursor, Keyset::from_text)
}

/// Reads a page request whose cursor holds a position that `read` parses from its text form.
pub(crate) fn page_request_with<C>(
    limit: Option<u32>,
    cursor: Option<String>,
    read: impl Fn(&str) -> Option<C>,
) -> Result<PageRequest<C>, ApiError> {
    let limit = PageLimit::parse(limit).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_limit",
            format!("`limit` must be between 1 and {}.", PageLimit::MAX),
        )
    })?;
    let after = cursor
        .map(|cursor| {
            URL_SAFE_NO_PAD
                .decode(cursor.as_bytes())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| read(&text))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_cursor",
                        "`cursor` is not one this API returned; pass `next_cursor` from the previous page as is.",
                    )
                })
        })
        .transpose()?;
    Ok(PageRequest { after, limit })
}

/// The opaque cursor of the page after a position, given its text form.
pub(crate) fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

/// The opaque cursor of the page after `keyset`, in a list ordered by creation.
pub(crate) fn keyset_cursor(keyset: Keyset) -> String {
    encode_cursor(&keyset.to_text())
}
