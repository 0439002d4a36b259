//! Output that goes through a pager (`$PAGER`, else `less -FRX`) when standard output is a
//! terminal, and straight to standard output otherwise.

use std::io::{IsTerminal, Write};
use std::process::{Child, Command, Stdio};

/// Where a command writes its long output.
pub struct Pager {
    child: Option<Child>,
    out: Box<dyn Write>,
}

impl Pager {
    /// Starts the pager when standard output is a terminal and one can be run.
    pub fn start() -> Pager {
        if std::io::stdout().is_terminal() {
            let cmd = std::env::var("PAGER").unwrap_or_else(|_| "less -FRX".to_string());
            let mut words = cmd.split_whitespace();
            if let Some(prog) = words.next() {
                if let Ok(mut child) = Command::new(prog).args(words).stdin(Stdio::piped()).spawn()
                {
                    if let Some(stdin) = child.stdin.take() {
                        return Pager {
                            child: Some(child),
                            out: Box::new(stdin),
                        };
                    }
                }
            }
        }
        Pager {
            child: None,
            out: Box::new(std::io::stdout().lock()),
        }
    }

    /// The writer; a reader who quits the pager early is not an error.
    pub fn writer(&mut self) -> &mut dyn Write {
        self
    }

    /// Closes the pager's input and waits for the reader to quit it.
    pub fn finish(mut self) {
        let _ = self.out.flush();
        self.out = Box::new(std::io::sink());
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Write for Pager {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.out.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(buf.len()),
            r => r,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.out.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            r => r,
        }
    }
}
