use std::time::Duration;

use crate::helpers::{host_port, FreezableProxy, TestApp};

#[actix_web::test]
async fn a_graceful_stop_lets_in_flight_requests_finish_and_refuses_new_ones() {
    let db_url = actors::testing::migrated_database().await;
    let proxy = FreezableProxy::start(host_port(&db_url)).await;
    let app = TestApp::spawn_on(&proxy.url_for(&db_url), Vec::new()).await;

    // An in-flight request, held up by a stalled database.
    proxy.freeze(true);
    let req = app.request(reqwest::Method::GET, "/api/v1/users/someone");
    let in_flight = actix_web::rt::spawn(async move { req.send().await.expect("response") });
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;

    // SIGTERM does the same as a graceful stop of the server handle.
    let stopping = actix_web::rt::spawn(app.handle.clone().stop(true));
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    proxy.freeze(false);

    let res = in_flight.await.unwrap();
    assert_eq!(res.status(), 404, "the in-flight request was answered");
    stopping.await.unwrap();
    let refused = reqwest::Client::new()
        .get(format!("{}/api/health", app.address))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a stopped server must not accept requests"
    );
}
