//! Compile-fail tests: mistakes the compiler must explain in the crate's own words.

/// The session layer outside `TraceLayer` (listed first in a `ServiceBuilder`) fails to
/// compile with `SessionBody`'s message naming the fix.
#[test]
fn the_layer_outside_trace_layer_names_the_fix() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/layer_outside_trace.rs");
}
