//! A real `montage serve` process for the tests: started on a free port on SQLite or a real
//! Postgres, driven over HTTP (reqwest) and the WebSocket (tokio-tungstenite).

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

/// How long a run may take in a debug build on a busy two-core machine.
pub const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Where a server keeps its data.
#[derive(Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// A fresh database on the test Postgres.
    pub async fn postgres() -> Backend {
        Backend::Postgres(super::fresh_postgres_url().await)
    }
}

/// A running `montage serve`, killed (SIGKILL) when dropped; it also stops by itself when
/// this test process goes away, because its standard input closes. Requests go through its
/// [`Api`], as the local user unless [`Api::as_user`] names another.
pub struct Server {
    pub child: tokio::process::Child,
    pub api: Api,
}

/// A client of the server: HTTP and WebSocket, with or without a user's token.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub ws: String,
    pub http: reqwest::Client,
}

impl std::ops::Deref for Server {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// An HTTP client that opens a fresh connection per request (the server closes one whose
/// upload it refused half-way, and a reused one would fail the next request), sending
/// `headers` with each.
pub fn client(headers: reqwest::header::HeaderMap) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .default_headers(headers)
        .build()
        .unwrap()
}

impl Server {
    pub async fn start(data: &Path, backend: &Backend, settings: &[(&str, &str)]) -> Server {
        Server::launch(data, backend, settings, Stdio::inherit()).await
    }

    /// The same, with the server's log written to `log`.
    pub async fn start_logging(
        data: &Path,
        backend: &Backend,
        settings: &[(&str, &str)],
        log: &Path,
    ) -> Server {
        let file = std::fs::File::create(log).unwrap();
        Server::launch(data, backend, settings, Stdio::from(file)).await
    }

    async fn launch(
        data: &Path,
        backend: &Backend,
        settings: &[(&str, &str)],
        stderr: Stdio,
    ) -> Server {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_montage"));
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--exit-with-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        on_data(command.as_std_mut(), data, backend);
        for (key, value) in settings {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("montage serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the server says where it listens within a minute")
            .unwrap()
            .expect("the server printed its address");
        let addr = line
            .strip_prefix("montage listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server {
            child,
            api: Api {
                base: format!("http://{addr}"),
                ws: format!("ws://{addr}/api/ws"),
                http: client(reqwest::header::HeaderMap::new()),
            },
        }
    }

    /// SIGKILL: no chance to save anything.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// Points a `montage` command at the test's data folder and database.
pub fn on_data(command: &mut std::process::Command, data: &Path, backend: &Backend) {
    command
        .current_dir(data)
        .env("MONTAGE_STORAGE__DATA_DIR", data.join("data"))
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn");
    if let Backend::Postgres(url) = backend {
        command.env("DATABASE_URL", url);
    }
}

/// `montage user add NAME` on the test's data: the token it prints.
pub fn add_user(data: &Path, backend: &Backend, name: &str) -> String {
    add_user_with(data, backend, name, &[])
}

/// `montage user add NAME --admin`: the token it prints.
pub fn add_admin(data: &Path, backend: &Backend, name: &str) -> String {
    add_user_with(data, backend, name, &["--admin"])
}

fn add_user_with(data: &Path, backend: &Backend, name: &str, flags: &[&str]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_montage"));
    command.args(["user", "add", name]).args(flags);
    on_data(&mut command, data, backend);
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    printed
        .lines()
        .find_map(|line| line.strip_prefix("token: "))
        .expect("the token is printed")
        .to_owned()
}

impl Api {
    /// The same server, as the user whose token this is.
    pub fn as_user(&self, token: &str) -> Api {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        Api {
            base: self.base.clone(),
            ws: format!("{}?token={token}", self.ws),
            http: client(headers),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The body of `GET path` as text (the Prometheus page, say).
    pub async fn text(&self, path: &str) -> String {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        response.text().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, body: &'static str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn upload(&self, name: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
        let response = self
            .http
            .post(self.url("/api/uploads"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn download(&self, url: &str) -> Vec<u8> {
        let response = self.http.get(self.url(url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        response.bytes().await.unwrap().to_vec()
    }

    pub async fn socket(&self) -> Socket {
        let (socket, _) = tokio_tungstenite::connect_async(&self.ws).await.unwrap();
        Socket(socket)
    }

    /// Creates a run and returns its id.
    pub async fn create(&self, body: Value) -> String {
        let (status, run) = self.post("/api/runs", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{run}");
        run["id"].as_str().unwrap().to_owned()
    }

    /// Waits until the run's status is one of `wanted`.
    pub async fn wait_status(&self, id: &str, wanted: &[&str]) -> Value {
        let deadline = tokio::time::Instant::now() + RUN_LIMIT;
        loop {
            let (status, run) = self.get(&format!("/api/runs/{id}")).await;
            assert_eq!(status, StatusCode::OK);
            if wanted.contains(&run["status"].as_str().unwrap_or("")) {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {id} still {} after {RUN_LIMIT:?}",
                run["status"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client.
pub struct Socket(pub WsStream);

impl Socket {
    pub async fn send(&mut self, message: Value) {
        self.0
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// The next JSON message from the server.
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(RUN_LIMIT, self.0.next())
                .await
                .expect("the server keeps talking")
                .expect("the connection is open")
                .unwrap();
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Subscribes to `run` after `seq` and checks the acknowledgement.
    pub async fn subscribe(&mut self, run: &str, seq: u64) {
        self.send(json!({ "v": 1, "type": "subscribe", "run_id": run, "seq": seq }))
            .await;
        let ack = self.next().await;
        assert_eq!(
            (ack["type"].as_str(), ack["run_id"].as_str()),
            (Some("subscribed"), Some(run))
        );
    }

    /// Collects messages until one of type `last` (included).
    pub async fn until(&mut self, last: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let message = self.next().await;
            let done = message["type"] == last;
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
}

/// The seqs of run events, checked to follow each other from `after + 1`.
pub fn contiguous(events: &[Value], after: u64) -> u64 {
    let mut expected = after + 1;
    for event in events {
        assert_eq!(event["v"], 1);
        assert_eq!(event["seq"].as_u64(), Some(expected), "{event}");
        expected += 1;
    }
    expected - 1
}

pub fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

/// Music with known beats, as WAV bytes.
pub fn song(dir: &Path) -> Vec<u8> {
    let path = dir.join("song.wav");
    montage_audio::synth::render(&montage_audio::synth::TrackSpec::steady(104.0, 16.0))
        .write_wav(&path)
        .unwrap();
    std::fs::read(path).unwrap()
}

/// Starts a run with a dark `upload` among bright generated scenes (so the critic asks),
/// under feedback policy `policy`, and a socket subscribed to it.
pub async fn dark_run(server: &Api, upload: &Value, policy: &str) -> (String, Socket) {
    let id = server
        .create(json!({
            "prompt": "a bright sunny beach video",
            "duration": 8,
            "formats": ["16:9"],
            "images": [upload],
            "feedback": policy,
        }))
        .await;
    let mut socket = server.socket().await;
    socket.subscribe(&id, 0).await;
    (id, socket)
}

/// ffprobe's view of a video: (codec, width, height, seconds).
pub fn probe(bytes: &[u8], dir: &Path) -> (String, u64, u64, f64) {
    let path: PathBuf = dir.join(format!("probe-{}.mp4", uuid::Uuid::new_v4()));
    std::fs::write(&path, bytes).unwrap();
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args([
            "stream=codec_name,width,height:format=duration",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe runs");
    assert!(output.status.success(), "ffprobe reads the video");
    let info: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stream = &info["streams"][0];
    (
        stream["codec_name"].as_str().unwrap().to_owned(),
        stream["width"].as_u64().unwrap(),
        stream["height"].as_u64().unwrap(),
        info["format"]["duration"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    )
}
