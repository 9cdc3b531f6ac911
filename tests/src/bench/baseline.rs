//! The baseline server: the least an HTTP server can do with the same bytes
//! (swallow an upload, stream a file from disk), run as its own process so it
//! is measured exactly like the emulator.

use axum::body::Body;
use axum::routing::{get, post};
use futures_util::StreamExt;
use std::path::PathBuf;

pub async fn serve(file: PathBuf) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route(
            "/sink",
            post(|body: Body| async move {
                let mut n = 0usize;
                let mut s = body.into_data_stream();
                while let Some(Ok(chunk)) = s.next().await {
                    n += chunk.len();
                }
                n.to_string()
            }),
        )
        .route(
            "/source",
            get(move || {
                let file = file.clone();
                async move {
                    match tokio::fs::File::open(&file).await {
                        Ok(f) => {
                            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024))
                        }
                        Err(e) => Body::from(e.to_string()),
                    }
                }
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("baseline listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
