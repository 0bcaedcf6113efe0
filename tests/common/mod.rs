//! What several test files share (not every file uses every helper).
#![allow(dead_code)]

/// Generates `sqlite` and `postgres` tests running `$scenario` on each database.
#[allow(unused_macros)]
macro_rules! on_both_databases {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$scenario(super::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$scenario(super::Backend::postgres().await).await;
            }
        }
    };
}

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

/// A 96×64 PNG of one colour.
pub fn picture(rgb: [u8; 3]) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(96, 64, image::Rgb(rgb));
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}
pub mod fakes;
pub mod server;
