//! The web console at `GET /`: one page, one script, one stylesheet, compiled into the binary
//! (`include_str!`), so `cargo build` alone produces a broker that serves it. The page reads the
//! admin API (through `/admin/nodes/{id}/…` for the other members) once a second; it uses no
//! JavaScript library, so there is nothing to pin, fetch or audit besides these files.

use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use warp::reply::{Reply, with_header};
use warp::{Filter, Rejection};

/// The page.
const INDEX: &str = include_str!("../../console/index.html");
/// Its script.
const SCRIPT: &str = include_str!("../../console/app.js");
/// Its stylesheet.
const STYLE: &str = include_str!("../../console/app.css");

/// `GET /`, `GET /console/app.js`, `GET /console/app.css`.
pub(super) fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let asset = |body: &'static str, content_type: &'static str| {
        // Assets change with the binary; a browser must not keep an old script.
        move || with_header(with_header(body, CONTENT_TYPE, content_type), CACHE_CONTROL, "no-cache")
    };
    let index = warp::path::end().and(warp::get()).map(asset(INDEX, "text/html; charset=utf-8"));
    let script =
        warp::path!("console" / "app.js").and(warp::get()).map(asset(SCRIPT, "text/javascript; charset=utf-8"));
    let style = warp::path!("console" / "app.css").and(warp::get()).map(asset(STYLE, "text/css; charset=utf-8"));
    index.or(script).unify().or(style).unify()
}
