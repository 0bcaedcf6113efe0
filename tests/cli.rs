//! The `montage` binary as a user meets it.

use assert_cmd::Command;

#[test]
fn montage_describes_itself() {
    for args in [&["--help"][..], &[]] {
        let out = Command::cargo_bin("montage")
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Usage: montage"), "{text}");
        assert!(text.contains("beat"), "{text}");
    }
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let out = Command::cargo_bin("montage")
        .unwrap()
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));
}
