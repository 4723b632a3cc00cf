//! UCI datasets from the read-only mirror `../shared/datasets` for the
//! solver tests (skipped with a note when it is absent).

use std::path::PathBuf;

use pathreg_data::Dataset;
use pathreg_data::download::Mirror;
use pathreg_data::registry::{DataConfig, load};

fn mirror() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    dir.join("uci").is_dir().then_some(dir)
}

/// `(train, test)` of `uci:<name>` (seeded 80/20 split), or `None` with a note.
pub fn uci(name: &str) -> Option<(Dataset, Dataset)> {
    let Some(mirror) = mirror() else {
        eprintln!("skipping: no dataset mirror at ../shared/datasets");
        return None;
    };
    let tmp = tempfile::tempdir().ok()?;
    let mut config = DataConfig::new(tmp.path());
    config.mirror = Some(Mirror::Dir(mirror));
    config.download = false;
    match load(&format!("uci:{name}"), &config) {
        Ok(data) => Some((data.train, data.test)),
        Err(e) => panic!("loading uci:{name} from the mirror failed: {e}"),
    }
}
