//! Tests that "a receipt means durably committed" holds where the store can see it: the settings
//! in force on every SQLite connection that writes, and on the PostgreSQL transaction a receipt
//! waits on.

use sqlx::Connection;

use super::write::{Lock, WriteTx};
use super::{Backend, Pool, Store, StoreError, on_backend};

/// Every connection `pool` may hand out, held at once (so that none is checked twice).
async fn every_sqlite_connection(pool: &Pool) -> Vec<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
    let Backend::Sqlite(pool) = pool else {
        panic!("a SQLite store has SQLite pools");
    };
    let mut connections = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        connections.push(pool.acquire().await.expect("a connection"));
    }
    connections
}

/// A PRAGMA's value on one connection, as text (SQLite converts a number).
async fn pragma(connection: &mut sqlx::SqliteConnection, name: &str) -> String {
    use sqlx::Row;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
        .fetch_one(connection)
        .await
        .unwrap();
    row.try_get_unchecked(0).unwrap()
}

#[tokio::test]
async fn every_sqlite_connection_commits_durably() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tipbox.db").display());
    let store = Store::connect(&url, 3).await.unwrap();
    let expected = [
        ("journal_mode", "wal"),
        ("synchronous", "2"),
        ("foreign_keys", "1"),
        ("secure_delete", "1"),
    ];
    let mut shared = every_sqlite_connection(&store.pool).await;
    let mut commit = every_sqlite_connection(&store.commit_pool).await;
    let mut staging = every_sqlite_connection(&store.staging_pool).await;
    assert_eq!((shared.len(), commit.len(), staging.len()), (3, 1, 4));
    for connection in shared.iter_mut().chain(commit.iter_mut()) {
        for (name, value) in expected {
            assert_eq!(pragma(connection, name).await, value, "PRAGMA {name}");
        }
    }
    // Staged chunks alone are not waited for (NORMAL): the commit that makes them part of a
    // tip is (`Store::staging_pool`).
    for connection in staging.iter_mut() {
        for (name, value) in expected {
            let value = if name == "synchronous" { "1" } else { value };
            assert_eq!(pragma(connection, name).await, value, "PRAGMA {name}");
        }
    }
    drop(staging);
    // The commit connection never checkpoints on the path a receipt waits for; the others do.
    assert_eq!(pragma(&mut commit[0], "wal_autocheckpoint").await, "0");
    assert_eq!(pragma(&mut shared[0], "wal_autocheckpoint").await, "1000");
    drop((shared, commit));
    store.close().await;
}

/// The `synchronous_commit` a transaction runs with (it commits nothing).
async fn synchronous_commit(mut tx: WriteTx) -> Result<String, StoreError> {
    Ok(
        on_backend!(tx.conn(), c => sqlx::query_scalar("SHOW synchronous_commit").fetch_one(c).await?),
    )
}

fn postgres_base_url() -> String {
    std::env::var("TIPBOX_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A write transaction a receipt waits on commits synchronously, even on connections whose
/// own setting says otherwise.
#[tokio::test]
async fn an_acknowledged_postgres_write_commits_synchronously() {
    let base = postgres_base_url();
    let schema = format!("tipbox_store_test_{}", crate::ids::random_id());
    let mut admin = sqlx::PgConnection::connect(&base).await.expect(
        "PostgreSQL at TIPBOX_TEST_POSTGRES_URL (default 127.0.0.1:5432/test) must be running",
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    // Every connection starts with synchronous_commit off, as a role or URL could set it.
    let url = format!("{base}{sep}options[search_path]={schema}&options[synchronous_commit]=off");
    let outcome = async {
        let store = Store::connect(&url, 2).await?;
        let seen = (
            synchronous_commit(store.write_on_commit_pool().await?).await?,
            synchronous_commit(store.write(Lock::Acknowledged).await?).await?,
            synchronous_commit(store.write(Lock::Rows).await?).await?,
        );
        store.close().await;
        Ok::<_, StoreError>(seen)
    }
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (commit_pool, shared_pool, unacknowledged) = outcome.unwrap();
    assert_eq!(commit_pool, "on", "the group commit's transaction");
    assert_eq!(shared_pool, "on", "a follow-up's or a reply's transaction");
    assert_eq!(
        unacknowledged, "off",
        "the connections really start with it off (else this test proves nothing)"
    );
}
