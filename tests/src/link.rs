//! A TCP link between one service and a server that a scenario can break as a network would: **cut** closes
//! every open connection and turns new ones away (a partition the peers notice), **silence** keeps every
//! connection open but lets nothing through, new ones included (a dead node or a black-holed path: no FIN, no
//! RST, only waiting), and **restore** lets new connections through again.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::AsyncReadExt as _,
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

/// A running link; it forwards until the sandbox's shutdown token is cancelled.
#[derive(Clone, Debug)]
pub struct Link {
    /// Where the service connects instead of the server.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

/// The tokens every connection forwarded in one open period watches.
#[derive(Clone, Debug)]
struct Period {
    cut: CancellationToken,
    silence: CancellationToken,
    shutdown: CancellationToken,
}

impl Period {
    fn new(shutdown: &CancellationToken) -> Period {
        Period {
            cut: shutdown.child_token(),
            silence: shutdown.child_token(),
            shutdown: shutdown.clone(),
        }
    }
}

#[derive(Debug)]
enum State {
    Open(Period),
    Cut,
    /// Connections are held and what they send is swallowed, until shutdown.
    Silent(CancellationToken),
}

impl Link {
    /// Starts forwarding loopback connections to `target`.
    pub async fn start(target: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<Link> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let link = Link {
            addr: listener.local_addr()?,
            state: Arc::new(Mutex::new(State::Open(Period::new(&shutdown)))),
        };
        let forwarding = link.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = shutdown.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                match &*forwarding.state.lock().expect("never poisoned") {
                    State::Open(period) => {
                        tokio::spawn(forward(client, target, period.clone()));
                    }
                    // While cut, the connection is closed at once: the client sees its peer go away.
                    State::Cut => {}
                    State::Silent(shutdown) => {
                        tokio::spawn(swallow(client, None, shutdown.clone()));
                    }
                }
            }
        });
        Ok(link)
    }

    /// Closes every open connection and turns new ones away.
    pub fn cut(&self) {
        let mut state = self.state.lock().expect("never poisoned");
        if let State::Open(period) = &*state {
            period.cut.cancel();
        }
        *state = State::Cut;
    }

    /// Lets nothing through any more, without closing anything: open connections and new ones hang.
    pub fn silence(&self) {
        let mut state = self.state.lock().expect("never poisoned");
        if let State::Open(period) = &*state {
            period.silence.cancel();
            *state = State::Silent(period.shutdown.clone());
        }
    }

    /// Lets new connections through again (connections silenced before stay dead, as after a long outage).
    pub fn restore(&self, shutdown: &CancellationToken) {
        let mut state = self.state.lock().expect("never poisoned");
        if !matches!(&*state, State::Open(_)) {
            *state = State::Open(Period::new(shutdown));
        }
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr, period: Period) {
    let Ok(mut server) = TcpStream::connect(target).await else { return };
    tokio::select! {
        () = period.cut.cancelled() => {}
        () = period.silence.cancelled() => swallow(client, Some(server), period.shutdown).await,
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
    }
}

/// Holds the connection open and discards what the client sends, until it closes or shutdown.
async fn swallow(mut client: TcpStream, server: Option<TcpStream>, shutdown: CancellationToken) {
    let _held = server;
    let mut buffer = [0u8; 4096];
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            read = client.read(&mut buffer) => if matches!(read, Ok(0) | Err(_)) { return },
        }
    }
}
