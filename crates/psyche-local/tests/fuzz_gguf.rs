//! The GGUF reader never panics on arbitrary bytes: property tests (proptest, fixed seed, 256
//! cases each) give `LocalModel::load` random files and mutated copies of the embedded model's
//! real header (magic, counts, metadata, tokenizer, tensor table — without the weights, so
//! every load must fail). Every failure must be an error naming the file.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::quantized::gguf_file;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use psyche_local::{DEFAULT_MODEL, LocalConfig, LocalModel, resolve_model};

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x5eed_0016),
        ..Config::default()
    }
}

/// The embedded model's header: everything before the tensor data.
fn header() -> &'static [u8] {
    static HEADER: OnceLock<Vec<u8>> = OnceLock::new();
    HEADER.get_or_init(|| {
        let path = resolve_model(DEFAULT_MODEL).expect("embedded model resolves");
        let mut file = std::fs::File::open(&path).expect("model opens");
        let content = gguf_file::Content::read(&mut file).expect("real header parses");
        let bytes = std::fs::read(&path).expect("model reads");
        bytes[..content.tensor_data_offset as usize].to_vec()
    })
}

/// Loads `bytes` as a model file; it must fail with an error naming the file.
fn load_fails_cleanly(dir: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    let path: PathBuf = dir.join("fuzz-case.gguf");
    std::fs::write(&path, bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    match LocalModel::load(&LocalConfig::new(path.to_string_lossy())) {
        Ok(_) => prop_assert!(false, "a file without weights loaded"),
        Err(e) => {
            let shown = e.to_string();
            prop_assert!(shown.contains("fuzz-case.gguf"), "{}", shown);
        }
    }
    Ok(())
}

/// (region, position seed, kind, value): region 0 = first 4 KiB (magic, counts, first
/// metadata), 1 = last 16 KiB (the tensor table), 2 = anywhere.
type Edits = Vec<(u8, usize, u8, u64)>;

fn edits() -> impl Strategy<Value = Edits> {
    let value = prop_oneof![
        Just(0u64),
        Just(1),
        Just(7),
        Just(u64::from(u32::MAX)),
        Just(1 << 31),
        Just(1 << 40),
        Just(u64::MAX),
        Just(u64::MAX / 2),
        any::<u64>(),
    ];
    prop::collection::vec((0u8..3, any::<usize>(), 0u8..4, value), 1..5)
}

/// Overwrites a byte, overwrites 8 bytes with a little-endian u64 (a count, length, dimension
/// or offset), deletes a byte, or truncates.
fn mutate(mut bytes: Vec<u8>, edits: &Edits) -> Vec<u8> {
    for &(region, pos, kind, value) in edits {
        let len = bytes.len();
        if len == 0 {
            break;
        }
        let (start, span) = match region {
            0 => (0, len.min(4096)),
            1 => (len.saturating_sub(16384), len.min(16384)),
            _ => (0, len),
        };
        let at = start + pos % span;
        match kind {
            0 => bytes[at] = value as u8,
            1 => {
                let end = (at + 8).min(len);
                bytes[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
            }
            2 => {
                bytes.remove(at);
            }
            _ => bytes.truncate(at),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_files_are_errors(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        load_fails_cleanly(dir.path(), &bytes)?;
        // The same with a valid magic and version in front.
        let mut with_magic = b"GGUF\x03\x00\x00\x00".to_vec();
        with_magic.extend_from_slice(&bytes);
        load_fails_cleanly(dir.path(), &with_magic)?;
    }

    #[test]
    fn mutated_real_headers_are_errors(edits in edits()) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        load_fails_cleanly(dir.path(), &mutate(header().to_vec(), &edits))?;
    }
}

#[test]
fn the_unmutated_header_is_reported_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("header-only.gguf");
    std::fs::write(&path, header()).unwrap();
    let err = LocalModel::load(&LocalConfig::new(path.to_string_lossy())).expect_err("no weights");
    let shown = err.to_string();
    assert!(
        shown.contains("header-only.gguf") && shown.contains("truncated"),
        "{shown}"
    );
}
