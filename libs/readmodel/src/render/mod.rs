//! Rendering a [`Snapshot`](crate::Snapshot) into the contract bodies, with freshness assessed at `now`.
//!
//! Every function is pure: same snapshot, language and instant, same body. Names fall back to Korean when a
//! translation is missing, and public-data text says which language it is in. Every rule that reads the clock
//! notes when its answer would change, so each body carries `valid_until`: the earliest such instant in it.
//!
//! - `context`: the body being rendered (snapshot, language, instant, the earliest change noted so far);
//! - `values`: what several screens show (lot status, parking summary, congestion, weather, events, notices,
//!   closure);
//! - one module per screen: `home` (home summary v2 and v1, park list), `park`, `forecast`, `widgets`,
//!   `status`; `transitions` is the earliest change across all of them, for caches.

mod context;
mod forecast;
mod home;
mod park;
mod status;
mod transitions;
mod values;
mod widgets;

pub use forecast::{lot_forecast, park_forecast};
pub use home::{home_summary, home_summary_v1, park_list};
pub use park::park_detail;
pub use status::{UPSTREAM_SOURCES, status};
pub use widgets::{UnknownLot, park_widget, parking_widget};
