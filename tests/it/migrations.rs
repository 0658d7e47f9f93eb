//! Upgrading a database that already holds tips: every schema change keeps what was stored.
//! The SQLite steps of 0004 and 0010 rebuild the `items` table (SQLite cannot change a CHECK
//! constraint in place); done wrong, dropping the old table would cascade to every sealed chunk,
//! or lose a column. And the two backends' migrations make the same tables and columns.

use std::collections::BTreeMap;

use crate::support::{Backend, Deployment, on_both_backends};

/// The statements that fill a database at schema version 3 (both backends accept them). The
/// first row of each table gets id 1 on both.
const FILL: [&str; 8] = [
    "INSERT INTO reviewer_keys (fingerprint, recipient, kind, label, active, added_at) \
     VALUES ('fp', 'age1qqqq', 'x25519', 'alice', TRUE, 0)",
    "INSERT INTO key_sets (fingerprint, created_at) VALUES ('set', 0)",
    "INSERT INTO key_set_members (key_set_id, key_id) VALUES (1, 1)",
    "INSERT INTO tips (id, received_at, receipt_hash, reply_recipient, status) \
     VALUES ('t1', 3600, x'01', 'age1reply', 'in_review')",
    "INSERT INTO items (id, tip_id, position, kind, size, key_set_id, staged_at) VALUES \
     ('i1', 't1', 0, 'message', 5, 1, NULL), ('i2', 't1', 1, 'facts', 3, 1, NULL), \
     ('i3', 't1', 2, 'note', 2, 1, NULL), ('s1', NULL, 0, 'attachment', 4, 1, 7200)",
    "INSERT INTO item_chunks (item_id, seq, data) VALUES ('i1', 0, x'0102030405'), \
     ('i2', 0, x'060708'), ('i3', 0, x'090a'), ('s1', 0, x'0b0c0d0e')",
    "INSERT INTO analysts (username, role, password_hash, totp_secret, created_at) \
     VALUES ('ana', 'analyst', 'hash', x'00', 0)",
    "INSERT INTO item_pulls (analyst_id, item_id) VALUES (1, 'i1')",
];

fn migrations_dir(backend: Backend) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
}

async fn an_upgrade_keeps_every_stored_item(backend: Backend) {
    let deployment = Deployment::new(backend, "");
    // Schema version 3, from a copy of the first three migrations.
    assert_eq!(old_schema(&deployment, backend, "0004").await, 3);
    for sql in FILL {
        // SQLite spells a blob literal X'…', PostgreSQL a bytea literal '\x…'.
        let sql = match backend {
            Backend::Sqlite => sql.replace("x'", "X'"),
            Backend::Postgres => sql.replace("x'", "'\\x"),
        };
        deployment.execute_sql(sql).await;
    }

    // Up to version 9 as the tipbox of that time would, and then what was written in the
    // columns added since version 3 (commitments, re-key marks, added times), which 0010's
    // rebuild of `items` must carry over.
    assert_eq!(old_schema(&deployment, backend, "0010").await, 9);
    let blob = match backend {
        Backend::Sqlite => "X'aabb'",
        Backend::Postgres => "'\\xaabb'",
    };
    deployment
        .execute_sql(format!(
            "UPDATE items SET commitment = {blob}, replaced_at = 10800, replaced_by = 'ana', \
             added_at = 14400 WHERE id = 'i3'"
        ))
        .await;

    // The upgrade, as an operator runs it.
    deployment.tipbox_ok(&["migrate"]);

    let store = deployment.store().await;
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.tips, counts.items, counts.chunks), (1, 4, 4));
    assert_eq!(
        store.item_chunk("i1", 0).await.unwrap().unwrap(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(
        store.item_chunk("s1", 0).await.unwrap().unwrap(),
        [11, 12, 13, 14]
    );
    let tip = store.tip("t1").await.unwrap().unwrap();
    assert_eq!(tip.status, "in_review");
    let kinds: Vec<&str> = tip.items.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(kinds, ["message", "facts", "note"]);
    assert!(tip.items[..2].iter().all(|i| i.added_at.is_none()));
    let note = &tip.items[2];
    assert_eq!(note.added_at, Some(14400));
    assert_eq!(note.commitment.as_deref(), Some(&[0xaa, 0xbb][..]));
    let replaced = note.replaced.as_ref().expect("the re-key mark");
    assert_eq!((replaced.at, replaced.by.as_str()), (10800, "ana"));
    store.close().await;

    // The new kinds are accepted, an unknown one still refused, and the foreign keys still
    // cascade: deleting the tip takes its items, their chunks and the pulls with it (the
    // staged item stays).
    deployment
        .execute_sql(
            "INSERT INTO items (id, tip_id, position, kind, size, key_set_id, added_at) \
             VALUES ('r1', 't1', 3, 'reply', 1, 1, 7200), ('p1', 't1', 4, 'report', 1, 1, 7200)",
        )
        .await;
    let refused = deployment
        .try_execute_sql(
            "INSERT INTO items (id, tip_id, position, kind, size, key_set_id) \
             VALUES ('b1', 't1', 5, 'bogus', 1, 1)",
        )
        .await;
    assert!(refused.is_err(), "the kind CHECK still holds");
    deployment
        .execute_sql("DELETE FROM tips WHERE id = 't1'")
        .await;
    let counts = deployment.counts().await;
    assert_eq!((counts.tips, counts.items, counts.chunks), (0, 1, 1));
    let store = deployment.store().await;
    assert!(store.item_chunk("i1", 0).await.unwrap().is_none());
    store.close().await;
}
on_both_backends!(an_upgrade_keeps_every_stored_item);

/// Brings the deployment's database to the schema of the migrations named below `upto` (a copy
/// of them, as the tipbox of that time had), from whatever version it is at; how many there are.
async fn old_schema(deployment: &Deployment, backend: Backend, upto: &str) -> usize {
    let old = deployment.path().join(format!("migrations-below-{upto}"));
    std::fs::create_dir(&old).unwrap();
    for entry in std::fs::read_dir(migrations_dir(backend)).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < upto {
            std::fs::copy(&path, old.join(name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();
    match backend {
        Backend::Sqlite => {
            use std::str::FromStr;
            std::fs::create_dir_all(deployment.data_dir()).unwrap();
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&deployment.database_url)
                .unwrap()
                .create_if_missing(true)
                .foreign_keys(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            migrator.run(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&deployment.database_url)
                .await
                .unwrap();
            migrator.run(&pool).await.unwrap();
            pool.close().await;
        }
    }
    migrator.iter().count()
}

/// Per table, per column: whether it accepts NULL.
type Columns = BTreeMap<String, BTreeMap<String, bool>>;

/// The tables and columns `tipbox migrate` made (sqlx's own bookkeeping table left out).
async fn columns(deployment: &Deployment) -> Columns {
    let sql = match deployment.backend {
        // SQLite enforces NOT NULL on a primary key only in WITHOUT ROWID tables and for an
        // INTEGER PRIMARY KEY (the rowid); elsewhere a key column accepts NULL unless declared
        // NOT NULL (https://sqlite.org/lang_createtable.html#the_primary_key).
        Backend::Sqlite => {
            "SELECT t.name, c.name, \
                    c.\"notnull\" = 0 AND NOT (c.pk > 0 AND (t.wr = 1 OR \
                        (upper(c.type) = 'INTEGER' AND \
                         (SELECT count(*) FROM pragma_table_info(t.name) WHERE pk > 0) = 1))) \
             FROM pragma_table_list t JOIN pragma_table_info(t.name) c \
             WHERE t.schema = 'main' AND t.type = 'table' \
               AND t.name NOT LIKE 'sqlite_%' AND t.name NOT LIKE '_sqlx_%'"
        }
        Backend::Postgres => {
            "SELECT table_name::text, column_name::text, is_nullable = 'YES' \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx\\_%'"
        }
    };
    let rows: Vec<(String, String, bool)> = deployment.query_rows(sql).await;
    let mut columns = Columns::new();
    for (table, column, nullable) in rows {
        columns.entry(table).or_default().insert(column, nullable);
    }
    columns
}

/// The columns of a fresh SQLite database and of a fresh PostgreSQL schema after `tipbox migrate`.
async fn both_backends_columns() -> (Columns, Columns) {
    let sqlite = Deployment::new(Backend::Sqlite, "");
    let postgres = Deployment::new(Backend::Postgres, "");
    sqlite.tipbox_ok(&["migrate"]);
    postgres.tipbox_ok(&["migrate"]);
    let (sqlite, postgres) = (columns(&sqlite).await, columns(&postgres).await);
    assert!(
        sqlite.contains_key("tips") && sqlite.len() >= 10,
        "{sqlite:?}"
    );
    (sqlite, postgres)
}

/// `tipbox migrate` on a fresh SQLite file and in a fresh PostgreSQL schema: the same tables,
/// with the same columns, each accepting NULL on both or on neither.
#[tokio::test(flavor = "multi_thread")]
async fn both_backends_make_the_same_tables_and_columns() {
    let (sqlite, postgres) = both_backends_columns().await;
    assert_eq!(sqlite, postgres);
}
