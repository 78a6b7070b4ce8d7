//! The local backend is optional: without the `local` feature neither psyche-finetune nor the
//! `psyche` facade pulls in psyche-local or candle (`cargo tree`, offline, from the lock file).

use std::process::Command;

/// The crates `cargo tree` lists for `package` with `args`, one name per line.
fn tree(package: &str, args: &[&str]) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["tree", "--offline", "--prefix", "none", "--format", "{p}"])
        .args(["-e", "normal,build", "-p", package])
        .args(args)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn local_crates(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter(|l| l.starts_with("candle") || l.starts_with("psyche-local"))
        .collect()
}

#[test]
fn without_the_local_feature_nothing_of_candle_is_compiled() {
    for package in ["psyche-finetune", "psyche"] {
        let lean = tree(package, &["--no-default-features"]);
        assert!(lean.contains("psyche-models"), "{lean}");
        assert_eq!(local_crates(&lean), Vec::<&str>::new(), "{package}");
        // The check itself sees candle when it is there.
        let full = tree(package, &[]);
        assert!(
            local_crates(&full)
                .iter()
                .any(|c| c.starts_with("candle-core")),
            "{package}: {full}"
        );
    }
}
