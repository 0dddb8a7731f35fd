//! The milter socket: parsing `inet:` and `unix:` specifications, binding, and the
//! listener the milter accepts MTA connections on.

use indymilter::Listener;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use std::future::Future;

/// Listening address of the milter.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum SocketSpec {
    Inet(SocketAddr),
    Unix(PathBuf),
}

impl SocketSpec {
    /// Parses `inet:HOST:PORT`, `inet:PORT@HOST` (the libmilter form), `inet6:...` and
    /// `unix:/path` (also `local:/path`).
    ///
    /// # Errors
    ///
    /// Returns a message saying which form is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| "expected inet:HOST:PORT or unix:/path".to_string())?;

        match kind.to_ascii_lowercase().as_str() {
            "unix" | "local" => {
                if !rest.starts_with('/') {
                    return Err("expected an absolute path after unix:".into());
                }
                Ok(Self::Unix(PathBuf::from(rest)))
            }
            "inet" | "inet6" => parse_inet(rest).map(Self::Inet),
            _ => Err(format!("unknown socket type {kind:?}; expected inet:HOST:PORT or unix:/path")),
        }
    }
}

fn parse_inet(rest: &str) -> Result<SocketAddr, String> {
    let invalid = || format!("invalid address {rest:?}; expected HOST:PORT such as 127.0.0.1:8894 or [::1]:8894");

    // libmilter writes inet:PORT@HOST.
    if let Some((port, host)) = rest.split_once('@') {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host.eq_ignore_ascii_case("localhost") { "127.0.0.1" } else { host };
        let ip = host.parse().map_err(|_| invalid())?;
        let port = port.parse().map_err(|_| invalid())?;
        return Ok(SocketAddr::new(ip, port));
    }

    let rest = rest.replacen("localhost:", "127.0.0.1:", 1);
    rest.parse().map_err(|_| invalid())
}

impl fmt::Display for SocketSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet(addr) => write!(f, "inet:{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A bound socket, before the milter runs on it.
pub enum BoundSocket {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl BoundSocket {
    /// Binds `spec`. A unix socket file left behind by a stopped milter is removed first,
    /// and the new one gets permission bits `mode`.
    ///
    /// # Errors
    ///
    /// Fails when the address is in use, the socket file belongs to a running process or
    /// is not a socket, or the directory is not writable.
    pub async fn bind(spec: &SocketSpec, mode: u32) -> io::Result<Self> {
        match spec {
            SocketSpec::Inet(addr) => Ok(Self::Tcp(TcpListener::bind(addr).await?)),
            SocketSpec::Unix(path) => {
                remove_stale_socket(path).await?;
                let listener = UnixListener::bind(path)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
                Ok(Self::Unix(listener, path.clone()))
            }
        }
    }

    /// Returns the bound address in socket specification form (the real port for port 0).
    pub fn local_spec(&self) -> io::Result<SocketSpec> {
        match self {
            Self::Tcp(listener) => Ok(SocketSpec::Inet(listener.local_addr()?)),
            Self::Unix(_, path) => Ok(SocketSpec::Unix(path.clone())),
        }
    }
}

async fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };

    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket; remove it or choose another path", path.display()),
        ));
    }

    if UnixStream::connect(path).await.is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use by a running process", path.display()),
        ));
    }

    std::fs::remove_file(path)
}

/// The listener handed to indymilter: it sets `TCP_NODELAY` on every TCP connection and
/// stops accepting (and closes the socket) as soon as `closed` completes.
///
/// Without `TCP_NODELAY`, the add-header reply and the final reply go out as two small
/// packets and the second waits for the MTA's delayed ACK, about 40 ms a message.
pub struct MilterListener {
    inner: Option<BoundSocket>,
    closed: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl MilterListener {
    pub fn new(socket: BoundSocket, closed: impl Future<Output = ()> + Send + 'static) -> Self {
        Self { inner: Some(socket), closed: Box::pin(closed) }
    }

    fn close(&mut self) {
        if let Some(BoundSocket::Unix(_, path)) = self.inner.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for MilterListener {
    fn drop(&mut self) {
        self.close();
    }
}

impl Listener for MilterListener {
    type Io = MilterStream;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>> {
        if self.inner.is_some() && self.closed.as_mut().poll(cx).is_ready() {
            self.close();
            self.inner = None;
        }

        match &mut self.inner {
            Some(BoundSocket::Tcp(listener)) => match TcpListener::poll_accept(listener, cx) {
                Poll::Ready(Ok((stream, _))) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::warn!("failed to set TCP_NODELAY on a milter connection: {error}");
                    }
                    Poll::Ready(Ok(MilterStream::Tcp(stream)))
                }
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                Poll::Pending => Poll::Pending,
            },
            Some(BoundSocket::Unix(listener, _)) => {
                UnixListener::poll_accept(listener, cx).map_ok(|(stream, _)| MilterStream::Unix(stream))
            }
            // Closed: never accept again. indymilter completes when its shutdown future does.
            None => Poll::Pending,
        }
    }
}

/// A connection from the MTA.
pub enum MilterStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsyncRead for MilterStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Unix(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MilterStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Unix(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Self::Unix(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Unix(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_inet_host_port() {
        assert_eq!(SocketSpec::parse("inet:127.0.0.1:8894"), Ok(SocketSpec::Inet("127.0.0.1:8894".parse().unwrap())));
    }

    #[test]
    fn parse_inet_libmilter_form() {
        assert_eq!(SocketSpec::parse("inet:8894@localhost"), Ok(SocketSpec::Inet("127.0.0.1:8894".parse().unwrap())));
    }

    #[test]
    fn parse_inet6_brackets() {
        assert_eq!(SocketSpec::parse("inet6:[::1]:8894"), Ok(SocketSpec::Inet("[::1]:8894".parse().unwrap())));
    }

    #[test]
    fn parse_unix_path() {
        assert_eq!(SocketSpec::parse("unix:/run/m.sock"), Ok(SocketSpec::Unix("/run/m.sock".into())));
    }

    #[test]
    fn parse_rejects_relative_unix() {
        assert!(SocketSpec::parse("unix:run/m.sock").is_err());
    }

    #[test]
    fn parse_rejects_unknown_type() {
        assert!(SocketSpec::parse("tcp:127.0.0.1:1").is_err());
    }

    #[test]
    fn parse_rejects_missing_port() {
        assert!(SocketSpec::parse("inet:127.0.0.1").is_err());
    }
}
