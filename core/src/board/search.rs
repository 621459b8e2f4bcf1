//! Where board files are found.
//!
//! A board is named either by a path (anything containing `/` or ending in
//! `.toml`, relative to a base directory) or by a name, looked up as
//! `NAME.toml` in an ordered list of directories; the first hit wins and a
//! miss names every directory searched. The boards of `board-configs/`
//! are built in as a last resort (`builtin.rs`).

use super::{Board, BoardError};
use std::path::{Path, PathBuf};

/// Where packages install the board files.
pub const SYSTEM_DIR: &str = "/usr/share/arcella/boards";

/// An ordered list of directories to look for `NAME.toml` in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardSearch {
    dirs: Vec<PathBuf>,
}

impl BoardSearch {
    /// Exactly these directories, in this order.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self { dirs }
    }

    /// The daemon's search: `explicit` (the `boards_dir` key) if set, else
    /// `<config dir>/boards` then [`SYSTEM_DIR`].
    pub fn for_daemon(explicit: Option<&Path>, config_dir: &Path) -> Self {
        match explicit {
            Some(dir) => Self::new(vec![config_dir.join(dir)]),
            None => Self::new(vec![config_dir.join("boards"), SYSTEM_DIR.into()]),
        }
    }

    /// A build host's search (`arcella compile --board`): `explicit`
    /// (`--boards-dir` / `ARCELLA_BOARDS_DIR`) if set, else `board-configs/`
    /// of the current directory (a checkout of this repository), then
    /// `boards/` beside the user's arcella.toml, then [`SYSTEM_DIR`].
    pub fn for_build_host(explicit: Option<&Path>, config_dir: &Path) -> Self {
        match explicit {
            Some(dir) => Self::new(vec![dir.to_owned()]),
            None => Self::new(vec![
                "board-configs".into(),
                config_dir.join("boards"),
                SYSTEM_DIR.into(),
            ]),
        }
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Whether `board` names a file rather than a board.
    pub fn is_path(board: &str) -> bool {
        board.contains('/') || board.ends_with(".toml")
    }

    /// Finds and loads the board `board` (a name, or a path relative to `base`).
    pub fn load(&self, board: &str, base: &Path) -> Result<Board, BoardError> {
        if Self::is_path(board) {
            return Board::load(&base.join(board));
        }
        crate::manifest::check_name(board).map_err(|message| BoardError::Invalid {
            file: "the board name".into(),
            field: "board",
            message: format!("`{board}` {message}"),
        })?;
        let file_name = format!("{board}.toml");
        if let Some(file) = self.dirs.iter().map(|d| d.join(&file_name)).find(|f| f.is_file()) {
            return Board::load(&file);
        }
        match super::builtin::text(board) {
            Some(text) => Board::parse(text, &format!("the built-in {file_name}")),
            None => Err(BoardError::NotFound {
                name: board.to_owned(),
                searched: self
                    .dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}
