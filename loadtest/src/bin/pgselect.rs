//! Capacity baseline (c): bare actix-web + one bb8-postgres pool answering
//! `GET /api/v1/users/{id}/xp` with the same statement as our `GetXp`, sent
//! with `query_typed` (one round trip), no checkout test; no middleware,
//! actors or cache.
//!
//! `DATABASE_URL=... pgselect [PORT] [POOL]` (defaults 8111, 16).

use actix_web::{web, App, HttpResponse, HttpServer};
use bb8_postgres::PostgresConnectionManager;
use serde_json::json;
use tokio_postgres::types::Type;
use tokio_postgres::NoTls;

type Pool = bb8::Pool<PostgresConnectionManager<NoTls>>;

const SQL: &str = "SELECT COALESCE(s.total_xp, 0) FROM users u
                   LEFT JOIN user_stats s ON s.user_id = u.user_id WHERE u.user_id = $1";

async fn xp(pool: web::Data<Pool>, path: web::Path<String>) -> HttpResponse {
    let user_id = path.into_inner();
    let Ok(client) = pool.get().await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    match client.query_typed(SQL, &[(&user_id, Type::TEXT)]).await {
        Ok(rows) => match rows.first() {
            Some(r) => {
                let xp: i64 = r.get(0);
                HttpResponse::Ok().json(json!({"user_id": user_id, "xp": xp}))
            }
            None => HttpResponse::NotFound().finish(),
        },
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8111);
    let size: u32 = args.next().and_then(|p| p.parse().ok()).unwrap_or(16);
    let url = std::env::var("DATABASE_URL")?;
    let manager = PostgresConnectionManager::new(url.parse()?, NoTls);
    // Connections open lazily, on the worker thread that first needs one.
    let pool = bb8::Pool::builder()
        .max_size(size)
        .test_on_check_out(false)
        .build(manager)
        .await?;
    println!("pgselect listening on http://127.0.0.1:{port}, pool {size}");
    HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(pool.clone()))
            .route("/api/v1/users/{id}/xp", web::get().to(xp))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await?;
    Ok(())
}
