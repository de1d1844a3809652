use crate::db::{Client, DbError, DbOperation};

/// `SELECT 1`: readiness checks and the actor-overhead benchmark.
#[derive(Debug, Clone, Copy)]
pub struct Ping;

impl DbOperation for Ping {
    type Output = i32;
    const NAME: &'static str = "ping";

    async fn run(self, client: &mut Client) -> Result<i32, DbError> {
        let one: i32 = 1;
        let row = client.query("SELECT $1::int4", &[&one]).await?;
        Ok(row.first().map(|r| r.get(0)).unwrap_or_default())
    }
}
