//! Redis with the production ACL rules (`cache::acl`): without its password a client is refused, with it a
//! service reaches its own keys and no one else's.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use cache::{Cache, RedisSettings, acl};
use sha2::Digest as _;

/// A redis-server of this test's own, stopped when dropped.
struct Server(Child, u16, std::path::PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.2);
    }
}

fn start(acl_file: &str) -> Server {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("hangang-cache-acl-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("users.acl"), acl_file).unwrap();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .arg("--aclfile")
        .arg(dir.join("users.acl"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server(child, port, dir)
}

fn settings(server: &Server, user: Option<&str>, password: Option<&str>) -> RedisSettings {
    let password_file = password.map(|password| {
        let path = server.2.join(format!("{}.password", user.unwrap_or("default")));
        std::fs::write(&path, format!("{password}\n")).unwrap();
        path
    });
    let user = user.map(|user| format!("{user}@")).unwrap_or_default();
    RedisSettings {
        redis_url: settings::REDIS_URL
            .parse_url(&format!("redis://{user}127.0.0.1:{}", server.1))
            .unwrap(),
        redis_timeout_ms: 1_000,
        redis_key_prefix: "test:".to_owned(),
        redis_password_file: password_file,
    }
}

#[tokio::test]
async fn each_service_reaches_only_its_own_keys_and_only_with_its_password() {
    let (api_password, push_password) =
        ("api-password-for-this-test", "push-password-for-this-test");
    let digest = |password: &str| hex::encode(sha2::Sha256::digest(password.as_bytes()));
    let file = [
        acl::DEFAULT_OFF.to_owned(),
        acl::USERS[0].line(&digest(api_password)),
        acl::USERS[1].line(&digest(push_password)),
    ]
    .join("\n");
    let server = start(&format!("{file}\n"));

    // No user, or the right user without its password, or a wrong one: refused.
    let anonymous = Cache::connect(&settings(&server, None, None)).unwrap();
    assert!(anonymous.ping().await.is_err(), "the default user is off");
    let no_password = Cache::connect(&settings(&server, Some("hangang-api"), None)).unwrap();
    assert!(no_password.ping().await.is_err(), "a user needs its password");
    let wrong =
        Cache::connect(&settings(&server, Some("hangang-api"), Some(push_password))).unwrap();
    assert!(wrong.ping().await.is_err(), "another user's password");

    // The api with its password: its snapshot keys, and not push's index.
    let api = Cache::connect(&settings(&server, Some("hangang-api"), Some(api_password))).unwrap();
    api.ping().await.unwrap();
    let snapshot = api.key(&["v2", "snapshot", "hot"]);
    api.set(&snapshot, b"body", Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(api.get(&snapshot).await.unwrap().as_deref(), Some(&b"body"[..]));
    let api_elsewhere =
        Cache::connect(&settings(&server, Some("hangang-api"), Some(api_password))).unwrap();
    let index = api_elsewhere.key(&["v1", "push", "prefs", "ready"]);
    assert!(
        api_elsewhere.set(&index, b"1", None).await.is_err(),
        "the api cannot write push's index"
    );

    // Push: its index, and not the api's snapshots (a forged snapshot would be served by every replica).
    let push =
        Cache::connect(&settings(&server, Some("hangang-push"), Some(push_password))).unwrap();
    push.set(&push.key(&["v1", "push", "prefs", "ready"]), b"1", None).await.unwrap();
    // A fresh client per refusal: a failed call opens the client's breaker, which would refuse by itself.
    let push_client =
        || Cache::connect(&settings(&server, Some("hangang-push"), Some(push_password))).unwrap();
    assert!(push_client().get(&snapshot).await.is_err(), "push cannot read the api's snapshots");
    assert!(
        push_client().set(&snapshot, b"forged", None).await.is_err(),
        "push cannot forge the api's snapshots"
    );
    // And the api's snapshot is what the api wrote.
    let api_again =
        Cache::connect(&settings(&server, Some("hangang-api"), Some(api_password))).unwrap();
    assert_eq!(api_again.get(&snapshot).await.unwrap().as_deref(), Some(&b"body"[..]));
}
