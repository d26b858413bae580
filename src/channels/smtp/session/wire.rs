//! The wire: commands written, replies read (bounded in length, as bytes), and what a
//! reply's codes say.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::{Session, SmtpError};
use crate::channels::smtp::reply::{Reply, Status, Step, parse_status};

/// Longest reply line read (RFC 5321 4.5.3.1.5 allows 512 octets): a server that never
/// ends a line must not make us buffer without bound until the timeout.
pub(super) const MAX_REPLY_LINE: u64 = 4096;
/// Most lines kept of one reply (EHLO lists a dozen capabilities at most).
const MAX_REPLY_LINES: usize = 256;

impl Session {
    pub(super) async fn command(&mut self, line: &[u8]) -> Result<(), SmtpError> {
        self.out.clear();
        self.out.extend_from_slice(line);
        self.flush().await
    }

    pub(super) async fn flush(&mut self) -> Result<(), SmtpError> {
        let io = self.io.get_mut();
        io.write_all(&self.out)
            .await
            .map_err(|_| SmtpError::Before("connection"))?;
        io.flush()
            .await
            .map_err(|_| SmtpError::Before("connection"))
    }

    pub(super) async fn expect(&mut self, want: u16) -> Result<(), SmtpError> {
        match self.reply().await? {
            code if code == want => Ok(()),
            code => Err(SmtpError::Reply(Reply::bare(code, Step::Session))),
        }
    }

    /// The enhanced status code of the reply just read (from its last line), when the
    /// server announced them.
    pub(super) fn status(&self, code: u16) -> Option<Status> {
        if self.enhanced {
            parse_status(&self.line, code)
        } else {
            None
        }
    }

    /// The code of the next (possibly multi-line) reply.
    pub(super) async fn reply(&mut self) -> Result<u16, SmtpError> {
        loop {
            let (code, last) = self.read_line().await?;
            if last {
                return Ok(code);
            }
        }
    }

    /// The code and text lines of the next reply.
    pub(super) async fn reply_lines(&mut self) -> Result<(u16, Vec<String>), SmtpError> {
        let mut lines = Vec::new();
        loop {
            let (code, last) = self.read_line().await?;
            let text = String::from_utf8_lossy(self.line.get(4..).unwrap_or_default());
            lines.push(text.trim_end().to_owned());
            if lines.len() > MAX_REPLY_LINES {
                return Err(SmtpError::Before("protocol"));
            }
            if last {
                return Ok((code, lines));
            }
        }
    }

    /// One reply line: its code, and whether it is the last line of the reply.
    async fn read_line(&mut self) -> Result<(u16, bool), SmtpError> {
        self.line.clear();
        let n = (&mut self.io)
            .take(MAX_REPLY_LINE)
            .read_until(b'\n', &mut self.line)
            .await
            .map_err(|_| SmtpError::Before("connection"))?;
        if !self.line.ends_with(b"\n") {
            // Cut off: the connection closed, or the line is far too long.
            let what = if n as u64 == MAX_REPLY_LINE {
                "protocol"
            } else {
                "connection"
            };
            return Err(SmtpError::Before(what));
        }
        let code = self
            .line
            .get(..3)
            .filter(|c| c.iter().all(u8::is_ascii_digit))
            .and_then(|c| std::str::from_utf8(c).ok()?.parse::<u16>().ok())
            .filter(|c| (200..600).contains(c))
            .ok_or(SmtpError::Before("protocol"))?;
        Ok((code, self.line.get(3) != Some(&b'-')))
    }
}
