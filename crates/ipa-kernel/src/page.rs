//! Keyset pagination: lists are ordered by a creation time and an id, and a page continues after
//! the last row of the previous one. Unlike OFFSET, a page costs the same however deep it is and
//! rows inserted meanwhile neither repeat nor vanish.

use time::OffsetDateTime;
use uuid::Uuid;

/// The position of a row in a list ordered by `(created_at, id)`: where the next page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyset {
    created_at: OffsetDateTime,
    id: Uuid,
}

impl Keyset {
    /// The position of the row created at `created_at` with `id`.
    pub fn new(created_at: OffsetDateTime, id: Uuid) -> Self {
        Self { created_at, id }
    }

    /// The row's creation time.
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// The row's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// A compact text form (`<unix nanoseconds>.<uuid>`), which the API wraps into an opaque
    /// cursor.
    pub fn to_text(&self) -> String {
        format!(
            "{}.{}",
            self.created_at.unix_timestamp_nanos(),
            self.id.simple()
        )
    }

    /// Reads [`Keyset::to_text`]'s form back; `None` for anything else.
    pub fn from_text(text: &str) -> Option<Self> {
        let (nanos, id) = text.split_once('.')?;
        let created_at =
            OffsetDateTime::from_unix_timestamp_nanos(nanos.parse::<i128>().ok()?).ok()?;
        let id = Uuid::try_parse(id).ok()?;
        Some(Self { created_at, id })
    }
}

/// How many rows a page holds: 1 to [`PageLimit::MAX`], [`PageLimit::DEFAULT`] when unsaid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimit(u16);

impl PageLimit {
    /// The page size when the client names none.
    pub const DEFAULT: u16 = 50;
    /// The largest page a client may ask for.
    pub const MAX: u16 = 200;

    /// A page size from a client's request; `None` when it is outside 1 to [`PageLimit::MAX`].
    pub fn parse(requested: Option<u32>) -> Option<Self> {
        match requested {
            None => Some(Self(Self::DEFAULT)),
            Some(n) if (1..=u32::from(Self::MAX)).contains(&n) => u16::try_from(n).ok().map(Self),
            Some(_) => None,
        }
    }

    /// The number of rows.
    pub fn get(&self) -> u16 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

/// Which page to read: after a position (or from the start), and how many rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest<C = Keyset> {
    /// Continue after this row; `None` for the first page.
    pub after: Option<C>,
    /// The page size.
    pub limit: PageLimit,
}

impl<C> Default for PageRequest<C> {
    fn default() -> Self {
        Self {
            after: None,
            limit: PageLimit::default(),
        }
    }
}

/// One page of a list, and where the next one starts (`None` on the last page). Lists ordered by
/// creation continue after a [`Keyset`]; lists with their own order name their position type `C`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, C = Keyset> {
    /// The rows, in the list's order.
    pub items: Vec<T>,
    /// The position to continue after, when more rows may follow.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Builds a page from up to `limit + 1` rows read in order: the extra row, when present, only
    /// proves that another page exists. `keyset` gives a row's position.
    pub fn from_overfetched(mut rows: Vec<T>, limit: PageLimit, keyset: impl Fn(&T) -> C) -> Self {
        let limit = usize::from(limit.get());
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(keyset)
        } else {
            None
        };
        Self { items: rows, next }
    }

    /// The same page with every row converted.
    pub fn map<U>(self, convert: impl FnMut(T) -> U) -> Page<U, C> {
        Page {
            items: self.items.into_iter().map(convert).collect(),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keysets_round_trip_through_text() {
        let keyset = Keyset::new(
            OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000).unwrap(),
            Uuid::new_v4(),
        );
        assert_eq!(Keyset::from_text(&keyset.to_text()), Some(keyset));
        for junk in ["", ".", "12", "abc.def", "1.not-a-uuid"] {
            assert_eq!(Keyset::from_text(junk), None, "{junk}");
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(PageLimit::parse(None).unwrap().get(), PageLimit::DEFAULT);
        assert_eq!(PageLimit::parse(Some(1)).unwrap().get(), 1);
        assert_eq!(PageLimit::parse(Some(200)).unwrap().get(), 200);
        assert_eq!(PageLimit::parse(Some(0)), None);
        assert_eq!(PageLimit::parse(Some(201)), None);
    }

    #[test]
    fn an_extra_row_means_another_page() {
        let limit = PageLimit::parse(Some(2)).unwrap();
        let at = |n: i64| Keyset::new(OffsetDateTime::from_unix_timestamp(n).unwrap(), Uuid::nil());
        let page = Page::from_overfetched(vec![3, 2, 1], limit, |n| at(*n));
        assert_eq!(page.items, vec![3, 2]);
        assert_eq!(page.next, Some(at(2)));
        let last = Page::from_overfetched(vec![1], limit, |n| at(*n));
        assert_eq!(last.next, None);
    }
}
