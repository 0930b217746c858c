//! The committed OpenAPI document is the one the binary prints.

use crate::binary::{ipa, run};

#[test]
fn docs_openapi_json_matches_the_binary() {
    let output = run(ipa().arg("openapi"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .expect("docs/openapi.json exists");
    assert!(
        printed == committed,
        "docs/openapi.json is out of date: regenerate it with `just openapi` \
         (cargo run -q -p ipa-server -- openapi > docs/openapi.json)"
    );
    let document: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
}
