//! A TCP link between one service and a server that a scenario can cut and restore, as a network partition
//! would: cutting closes every open connection and turns new ones away until the link is restored.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A running link; it forwards until the sandbox's shutdown token is cancelled.
#[derive(Clone, Debug)]
pub struct Link {
    /// Where the service connects instead of the server.
    pub addr: SocketAddr,
    /// `None` while cut; otherwise the token every forwarded connection of this period watches.
    open: Arc<Mutex<Option<CancellationToken>>>,
}

impl Link {
    /// Starts forwarding loopback connections to `target`.
    pub async fn start(target: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<Link> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let link = Link {
            addr: listener.local_addr()?,
            open: Arc::new(Mutex::new(Some(shutdown.child_token()))),
        };
        let forwarding = link.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = shutdown.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                // While cut, the connection is closed at once: the client sees its peer go away.
                let Some(period) = forwarding.open.lock().expect("never poisoned").clone() else {
                    continue;
                };
                tokio::spawn(forward(client, target, period));
            }
        });
        Ok(link)
    }

    /// Closes every open connection and turns new ones away.
    pub fn cut(&self) {
        if let Some(period) = self.open.lock().expect("never poisoned").take() {
            period.cancel();
        }
    }

    /// Lets connections through again.
    pub fn restore(&self, shutdown: &CancellationToken) {
        let mut open = self.open.lock().expect("never poisoned");
        if open.is_none() {
            *open = Some(shutdown.child_token());
        }
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr, period: CancellationToken) {
    let Ok(mut server) = TcpStream::connect(target).await else { return };
    tokio::select! {
        () = period.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
    }
}
