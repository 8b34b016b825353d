//! The database schema seen from outside the write path: checking that the
//! embedded migrations were applied (for a writer whose role may not change
//! the schema), and granting a role exactly what a running writer needs.
//!
//! Least privilege in two roles: one that owns the schema runs
//! `adcast-writer migrate --grant-to ROLE`; the writer logs in as `ROLE`
//! with `--skip-migrations` and can read and write rows, nothing more.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Context};
use sqlx::migrate::{Migrate, MigrateError};
use sqlx::PgPool;

use crate::store::MIGRATOR;

/// The table sqlx records applied migrations in.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";
/// The audit trail (migration 0002): append-only for the writer's role.
const AUDIT_TABLE: &str = "ad_history";
/// PostgreSQL's `undefined_table`.
const UNDEFINED_TABLE: &str = "42P01";
/// PostgreSQL's `insufficient_privilege`.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// A PostgreSQL role name that means the same quoted or unquoted: a lower
/// case letter or `_`, then lower case letters, digits, `_` or `$`, at most
/// 63 bytes (PostgreSQL's identifier limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleName(String);

impl FromStr for RoleName {
    type Err = String;

    fn from_str(text: &str) -> Result<RoleName, String> {
        let mut bytes = text.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
        let rest_ok =
            bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'$');
        if !first_ok || !rest_ok || text.len() > 63 {
            return Err(format!(
                "{text:?} is not a PostgreSQL role name this command accepts: 1 to 63 characters, \
                 lower case letters, digits, `_` or `$`, not starting with a digit or `$` \
                 (an unquoted name is stored in lower case)"
            ));
        }
        Ok(RoleName(text.to_owned()))
    }
}

impl RoleName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks, without changing anything, that every embedded migration is
/// applied, unchanged, and that nothing newer is: what `MIGRATOR.run` would
/// find to do is nothing.
pub async fn check_applied(pool: &PgPool) -> anyhow::Result<()> {
    let run_migrate =
        "run `adcast-writer migrate` first (with a role that may change the schema), \
                       or start without --skip-migrations";
    let mut connection = pool
        .acquire()
        .await
        .context("connecting to check migrations")?;
    let applied = match connection.list_applied_migrations().await {
        Ok(applied) => applied,
        Err(MigrateError::Execute(sqlx::Error::Database(error)))
            if error.code().as_deref() == Some(UNDEFINED_TABLE) =>
        {
            bail!("the database has no migrations applied ({MIGRATIONS_TABLE} does not exist); {run_migrate}")
        }
        Err(error) => {
            return Err(error).context(format!("reading {MIGRATIONS_TABLE}"));
        }
    };
    if let Some(version) = connection
        .dirty_version()
        .await
        .context(format!("reading {MIGRATIONS_TABLE}"))?
    {
        bail!(
            "migration {version} failed part-way; repair the database, then run `adcast-writer migrate`"
        );
    }
    let applied: HashMap<i64, _> = applied
        .into_iter()
        .map(|migration| (migration.version, migration.checksum))
        .collect();
    let mut missing = Vec::new();
    for migration in MIGRATOR
        .iter()
        .filter(|migration| migration.migration_type.is_up_migration())
    {
        match applied.get(&migration.version) {
            None => missing.push(migration.version.to_string()),
            Some(checksum) if *checksum != migration.checksum => bail!(
                "migration {} ({}) was changed after it was applied; the database does not match this adcast-writer",
                migration.version,
                migration.description
            ),
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        bail!(
            "the database lacks migration(s) {}; {run_migrate}",
            missing.join(", ")
        );
    }
    if let Some(version) = applied
        .keys()
        .filter(|version| !MIGRATOR.version_exists(**version))
        .min()
    {
        bail!(
            "the database has migration {version}, which this adcast-writer does not know \
             (a newer version migrated it)"
        );
    }
    Ok(())
}

/// Whether applying migrations failed for want of the right to change the
/// schema (the writer runs as a least-privilege role).
pub fn lacked_schema_rights(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<MigrateError>(),
        Some(MigrateError::Execute(sqlx::Error::Database(error)))
            if error.code().as_deref() == Some(INSUFFICIENT_PRIVILEGE)
    )
}

/// Grants `role` exactly what a running writer needs, on every table and
/// sequence of the schema the migrations created theirs in: `SELECT`,
/// `INSERT`, `UPDATE`, `DELETE` on the tables, `USAGE`, `SELECT`, `UPDATE`
/// on the sequences, `SELECT` alone on the migrations table (to check it),
/// `SELECT` and `INSERT` alone on the audit trail (the writer appends to it
/// and cannot rewrite it), and `USAGE` on the schema (without which no table in it can be named).
/// No `CREATE`, `TRUNCATE`, `REFERENCES` or `TRIGGER`; granting twice is
/// the same as granting once.
pub async fn grant_writer_privileges(pool: &PgPool, role: &RoleName) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role.as_str())
            .fetch_one(&mut *tx)
            .await?;
    if !exists {
        bail!("role {role} does not exist; create it first, e.g. CREATE ROLE {role} LOGIN PASSWORD '…'");
    }
    // PostgreSQL builds the statements: `%I` and `regclass` quote every name.
    let statements: Vec<String> = sqlx::query_scalar(
        "SELECT format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), $1)
         UNION ALL
         SELECT format('GRANT %s ON %s %s TO %I',
                       CASE WHEN c.relkind = 'S' THEN 'USAGE, SELECT, UPDATE'
                            WHEN c.relname = $2 THEN 'SELECT'
                            WHEN c.relname = $3 THEN 'SELECT, INSERT'
                            ELSE 'SELECT, INSERT, UPDATE, DELETE' END,
                       CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                       c.oid::regclass, $1)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'S')",
    )
    .bind(role.as_str())
    .bind(MIGRATIONS_TABLE)
    .bind(AUDIT_TABLE)
    .fetch_all(&mut *tx)
    .await
    .context("listing the schema's tables and sequences")?;
    for statement in &statements {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("running {statement}"))?;
    }
    tx.commit().await?;
    tracing::info!(role = %role, grants = statements.len(), "privileges granted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lower_case_identifiers_are_role_names() {
        for name in ["adcast_writer", "_w", "w$1", &"a".repeat(63)] {
            assert_eq!(name.parse::<RoleName>().unwrap().as_str(), name);
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for name in [
            "",
            "1writer",
            "$w",
            "Writer",
            "adcast-writer",
            "w; DROP TABLE ads",
            "w\"x",
            "wr iter",
            &"a".repeat(64),
        ] {
            assert!(name.parse::<RoleName>().is_err(), "{name:?}");
        }
    }
}
