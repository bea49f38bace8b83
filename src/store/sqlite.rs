//! [`SqliteStore`]: the SQLite backend (feature `sqlite`, SQLite compiled
//! in).
//!
//! One file; WAL journal and `synchronous=FULL`, so a commit that returned
//! survives a crash of the process or the machine. Two tables: `meta`
//! (`schema` and `generation`) and `records` (`kind`, `id`, `value`, keyed
//! by kind and id). A commit is one `BEGIN IMMEDIATE` transaction that
//! first checks the generation (the cross-process lock: the write lock is
//! SQLite's, the staleness check is ours), then applies the batch and bumps
//! the generation. Reads run in one read transaction, so they see one
//! commit's state.
//!
//! The schema carries its version; opening a file of an older version
//! migrates it step by step in one transaction, and a newer version is
//! refused ([`StoreError::UnsupportedSchema`]).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::{Change, Loaded, RecordKey, RecordValues, SCHEMA_VERSION, Store, StoreError};

/// How long a writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One migration step: brings the schema from version `n` (its index in
/// the list) to `n + 1`.
type Step = fn(&Transaction<'_>) -> rusqlite::Result<()>;

/// The steps from version 0 (an empty file) to [`SCHEMA_VERSION`].
const STEPS: &[Step] = &[create_v1];
const _: () = assert!(STEPS.len() == SCHEMA_VERSION as usize);

fn create_v1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
         INSERT INTO meta (key, value) VALUES ('generation', 0);
         CREATE TABLE records (
             kind INTEGER NOT NULL,
             id BLOB NOT NULL,
             value BLOB NOT NULL,
             PRIMARY KEY (kind, id)
         ) WITHOUT ROWID;",
    )
}

/// Maps a SQLite failure to a typed error with no text.
fn error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DiskFull => StoreError::Full,
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy,
            _ => StoreError::Io(failure.extended_code),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt("column type"),
        _ => StoreError::Io(-1),
    }
}

/// The value of `key` in the `meta` table, if set.
fn meta(tx: &Transaction<'_>, key: &str) -> Result<Option<i64>, StoreError> {
    tx.query_row(
        "SELECT value FROM meta WHERE key = ?1",
        params![key],
        |row| row.get(0),
    )
    .optional()
    .map_err(error)
}

/// The schema version of the file (0 when it has no tables yet).
fn schema_version(tx: &Transaction<'_>) -> Result<u32, StoreError> {
    let has_meta: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |row| row.get(0),
        )
        .map_err(error)?;
    if !has_meta {
        return Ok(0);
    }
    meta(tx, "schema")?
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(StoreError::Corrupt("schema version"))
}

/// Brings the file to the last version of `steps`, in one transaction.
fn migrate(conn: &mut Connection, steps: &[Step]) -> Result<(), StoreError> {
    let target = u32::try_from(steps.len()).map_err(|_| StoreError::Corrupt("schema"))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error)?;
    let found = schema_version(&tx)?;
    if found > target {
        return Err(StoreError::UnsupportedSchema(found));
    }
    if found == target {
        return Ok(());
    }
    for step in steps
        .iter()
        .skip(usize::try_from(found).unwrap_or(usize::MAX))
    {
        step(&tx).map_err(error)?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?1)",
        params![target],
    )
    .map_err(error)?;
    tx.commit().map_err(error)
}

fn generation(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    meta(tx, "generation")?
        .and_then(|v| u64::try_from(v).ok())
        .ok_or(StoreError::Corrupt("generation"))
}

fn record_key(kind: i64, id: Vec<u8>) -> Result<RecordKey, StoreError> {
    Ok(RecordKey {
        kind: u8::try_from(kind).map_err(|_| StoreError::Corrupt("record kind"))?,
        id: id
            .try_into()
            .map_err(|_| StoreError::Corrupt("record id"))?,
    })
}

/// A store in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in the file at `path`, and
    /// migrates an older schema. Each process (or each endpoint) opens its
    /// own connection; they may share the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_steps(path.as_ref(), STEPS)
    }

    fn open_with_steps(path: &Path, steps: &[Step]) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(error)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io(-1));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(error)?;
        migrate(&mut conn, steps)?;
        Ok(Self { conn })
    }

    /// Caps the database at about `bytes` (in whole pages): a commit that
    /// would grow it further fails with [`StoreError::Full`] and changes
    /// nothing, as on a full disk. Applies to this connection.
    pub fn set_size_limit(&mut self, bytes: u64) -> Result<(), StoreError> {
        let page: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .map_err(error)?;
        let pages = (bytes / u64::try_from(page).unwrap_or(1).max(1)).max(1);
        let _: i64 = self
            .conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                row.get(0)
            })
            .map_err(error)?;
        Ok(())
    }

    /// The size of the database in bytes (pages in use, write-ahead log
    /// included once checkpointed).
    pub fn size_bytes(&self) -> Result<u64, StoreError> {
        let bytes: i64 = self
            .conn
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |row| row.get(0),
            )
            .map_err(error)?;
        u64::try_from(bytes).map_err(|_| StoreError::Corrupt("size"))
    }

    /// The number of records held.
    pub fn record_count(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM records", [], |row| row.get(0))
            .map_err(error)?;
        u64::try_from(count).map_err(|_| StoreError::Corrupt("count"))
    }

    fn read_transaction(&mut self) -> Result<Transaction<'_>, StoreError> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(error)
    }
}

impl Store for SqliteStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let tx = self.read_transaction()?;
        let generation = generation(&tx)?;
        let mut records = Vec::new();
        {
            let mut stmt = tx
                .prepare("SELECT kind, id, value FROM records")
                .map_err(error)?;
            let mut rows = stmt.query([]).map_err(error)?;
            while let Some(row) = rows.next().map_err(error)? {
                let key = record_key(row.get(0).map_err(error)?, row.get(1).map_err(error)?)?;
                records.push((key, row.get(2).map_err(error)?));
            }
        }
        tx.commit().map_err(error)?;
        Ok(Loaded {
            generation,
            records,
        })
    }

    fn read(&mut self, keys: &[RecordKey]) -> Result<(u64, RecordValues), StoreError> {
        let tx = self.read_transaction()?;
        let generation = generation(&tx)?;
        let mut values = Vec::with_capacity(keys.len());
        {
            let mut stmt = tx
                .prepare("SELECT value FROM records WHERE kind = ?1 AND id = ?2")
                .map_err(error)?;
            for key in keys {
                let value: Option<Vec<u8>> = stmt
                    .query_row(params![key.kind, &key.id[..]], |row| row.get(0))
                    .optional()
                    .map_err(error)?;
                values.push(value);
            }
        }
        tx.commit().map_err(error)?;
        Ok((generation, values))
    }

    fn commit(&mut self, expected: u64, changes: &[Change]) -> Result<u64, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        let found = generation(&tx)?;
        if found != expected {
            return Err(StoreError::Stale { expected, found });
        }
        {
            let mut put = tx
                .prepare("INSERT OR REPLACE INTO records (kind, id, value) VALUES (?1, ?2, ?3)")
                .map_err(error)?;
            let mut delete = tx
                .prepare("DELETE FROM records WHERE kind = ?1 AND id = ?2")
                .map_err(error)?;
            for change in changes {
                match &change.value {
                    Some(value) => put.execute(params![change.key.kind, &change.key.id[..], value]),
                    None => delete.execute(params![change.key.kind, &change.key.id[..]]),
                }
                .map_err(error)?;
            }
        }
        let next = expected.saturating_add(1);
        let stored = i64::try_from(next).map_err(|_| StoreError::Corrupt("generation"))?;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'generation'",
            params![stored],
        )
        .map_err(error)?;
        tx.commit().map_err(error)?;
        Ok(next)
    }
}

/// A fresh directory under the system's temporary directory, for tests
/// that need SQLite files.
#[cfg(test)]
pub(crate) fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "roomseal-sqlite-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(kind: u8, byte: u8) -> RecordKey {
        RecordKey {
            kind,
            id: [byte; 32],
        }
    }

    fn put(kind: u8, byte: u8, value: &[u8]) -> Change {
        Change {
            key: RecordKey {
                kind,
                id: [byte; 32],
            },
            value: Some(value.to_vec()),
        }
    }

    #[test]
    fn commits_are_conditional_atomic_and_durable() {
        let dir = tempdir();
        let path = dir.join("store.db");
        let mut a = SqliteStore::open(&path).unwrap();
        let mut b = SqliteStore::open(&path).unwrap();
        assert_eq!(a.load().unwrap(), Loaded::default());
        assert_eq!(a.commit(0, &[put(1, 1, b"one"), put(2, 2, b"two")]), Ok(1));
        // The other connection is stale until it reloads.
        assert_eq!(
            b.commit(0, &[put(1, 1, b"other")]),
            Err(StoreError::Stale {
                expected: 0,
                found: 1
            })
        );
        assert_eq!(b.load().unwrap().generation, 1);
        let delete = Change {
            key: RecordKey {
                kind: 2,
                id: [2; 32],
            },
            value: None,
        };
        assert_eq!(b.commit(1, &[put(1, 1, b"new"), delete]), Ok(2));
        let (generation, values) = a
            .read(&[
                RecordKey {
                    kind: 1,
                    id: [1; 32],
                },
                RecordKey {
                    kind: 2,
                    id: [2; 32],
                },
            ])
            .unwrap();
        assert_eq!((generation, values), (2, vec![Some(b"new".to_vec()), None]));
        drop((a, b));
        let mut reopened = SqliteStore::open(&path).unwrap();
        let loaded = reopened.load().unwrap();
        assert_eq!(loaded.generation, 2);
        assert_eq!(loaded.records, vec![(slot(1, 1), b"new".to_vec())]);
    }

    #[test]
    fn an_aborted_or_full_commit_changes_nothing() {
        let dir = tempdir();
        let path = dir.join("store.db");
        let mut store = SqliteStore::open(&path).unwrap();
        store.commit(0, &[put(1, 1, b"kept")]).unwrap();
        // A trigger aborts the transaction midway, after its first write.
        store
            .conn
            .execute_batch(
                "CREATE TEMP TRIGGER tear BEFORE INSERT ON records WHEN NEW.kind = 9
                 BEGIN SELECT RAISE(ABORT, 'torn'); END;",
            )
            .unwrap();
        let torn = [put(1, 1, b"lost"), put(1, 2, b"lost"), put(9, 9, b"boom")];
        assert!(matches!(store.commit(1, &torn), Err(StoreError::Io(_))));
        store.conn.execute_batch("DROP TRIGGER tear").unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.generation, 1);
        assert_eq!(loaded.records, vec![(slot(1, 1), b"kept".to_vec())]);
        // A full disk: typed error, nothing changed, and the next commit
        // works once there is room.
        let size = store.size_bytes().unwrap();
        store.set_size_limit(size).unwrap();
        let big: Vec<Change> = (0..64u8).map(|i| put(3, i, &[i; 4096])).collect();
        assert_eq!(store.commit(1, &big), Err(StoreError::Full));
        assert_eq!(store.load().unwrap().records.len(), 1);
        store.set_size_limit(1 << 30).unwrap();
        assert_eq!(store.commit(1, &big), Ok(2));
        assert_eq!(store.record_count(), Ok(65));
    }

    #[test]
    fn older_schemas_migrate_and_newer_ones_are_refused() {
        fn add_v2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
            tx.execute_batch(
                "CREATE TABLE extra (x INTEGER);
                 UPDATE records SET value = CAST(value || x'21' AS BLOB);",
            )
        }
        let dir = tempdir();
        let path = dir.join("store.db");
        let mut v1 = SqliteStore::open(&path).unwrap();
        v1.commit(0, &[put(1, 1, b"v1")]).unwrap();
        drop(v1);
        // A build with a (fake) version 2 migrates the file, keeping the
        // records and the generation.
        let mut v2 = SqliteStore::open_with_steps(&path, &[create_v1, add_v2]).unwrap();
        let loaded = v2.load().unwrap();
        assert_eq!(loaded.generation, 1);
        assert_eq!(loaded.records[0].1, b"v1!".to_vec());
        drop(v2);
        // Opening it again does not run the step again.
        let mut again = SqliteStore::open_with_steps(&path, &[create_v1, add_v2]).unwrap();
        assert_eq!(again.load().unwrap().records[0].1, b"v1!".to_vec());
        drop(again);
        // This build (version 1) refuses the newer file.
        assert_eq!(
            SqliteStore::open(&path).err(),
            Some(StoreError::UnsupportedSchema(2))
        );
    }
}
