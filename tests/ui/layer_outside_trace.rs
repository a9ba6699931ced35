// The session layer listed before TraceLayer in a ServiceBuilder sits outside it: the
// compiler must name the fix, not a bare `ResponseBody<…>: From<String>` bound.
use axum::{Router, routing::get};
use jwt_session::testing::TestKit;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

fn main() {
    let kit = TestKit::new();
    let stack = ServiceBuilder::new()
        .layer(kit.layer::<()>())
        .layer(TraceLayer::new_for_http());
    let _app: Router = Router::new()
        .route("/", get(|| async { "hello" }))
        .layer(stack);
}
