//! The migration command line (sea-orm-migration's CLI): `migration up`, `down`, `status`,
//! `fresh`... against `DATABASE_URL`. The `ipa migrate` subcommand does the same and also knows
//! the embedded database.

#[tokio::main]
async fn main() {
    sea_orm_migration::cli::run_cli(migration::Migrator).await;
}
