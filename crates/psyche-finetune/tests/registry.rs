//! The registry under concurrent writers: every entry written by any writer survives.

use std::path::PathBuf;
use std::sync::{Arc, Barrier};

use psyche_finetune::{Registry, RegistryEntry};

fn entry(writer: usize, seed: u64) -> RegistryEntry {
    RegistryEntry {
        name: format!("writer-{writer}"),
        seed,
        engine: "test".into(),
        base_model: "base".into(),
        model_id: format!("base+w{writer}s{seed}"),
        data_hash: "0".repeat(64),
        manifest: PathBuf::from(format!("writer-{writer}/seed-{seed}/manifest.json")),
        artifact: None,
    }
}

#[test]
fn concurrent_writers_lose_no_entry() {
    const WRITERS: usize = 6;
    const PER_WRITER: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.json");
    let start = Arc::new(Barrier::new(WRITERS));
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let path = path.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                // Each writer has its own handle (and so its own lock file descriptor), as two
                // processes would.
                let mut reg = Registry::open(&path).unwrap();
                start.wait();
                for seed in 0..PER_WRITER {
                    reg.insert(entry(w, seed)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let reg = Registry::open(&path).unwrap();
    assert_eq!(reg.models.len(), WRITERS * PER_WRITER as usize);
    for w in 0..WRITERS {
        let group = reg.group(&format!("writer-{w}"));
        assert_eq!(
            group.iter().map(|e| e.seed).collect::<Vec<_>>(),
            (0..PER_WRITER).collect::<Vec<_>>()
        );
        assert_eq!(group[3], &entry(w, 3));
    }
    // No temporary files are left next to the registry (only it and its lock file).
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["registry.json", "registry.json.lock"]);
}

#[test]
fn remove_drops_one_entry_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/registry.json");
    let mut reg = Registry::open(&path).unwrap();
    reg.insert(entry(0, 1)).unwrap();
    reg.insert(entry(0, 2)).unwrap();
    assert!(reg.remove("writer-0/seed-1").unwrap());
    assert!(!reg.remove("writer-0/seed-1").unwrap());
    let reread = Registry::open(&path).unwrap();
    assert_eq!(
        reread.models.keys().collect::<Vec<_>>(),
        ["writer-0/seed-2"]
    );
}
