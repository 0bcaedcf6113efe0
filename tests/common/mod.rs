//! What several test files share.

/// The URL of a fresh database on the test Postgres that `scripts/test` starts (named in
/// `MONTAGE_TEST_POSTGRES_URL`), so each test has its own.
pub async fn fresh_postgres_url() -> String {
    let admin = std::env::var("MONTAGE_TEST_POSTGRES_URL").expect(
        "MONTAGE_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts Postgres",
    );
    let name = format!("montage_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}
