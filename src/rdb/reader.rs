//! A pull-style adapter: records from anything that implements [`std::io::Read`].

use std::io::{self, Read};

use super::{Decoder, DecoderOptions, Error, Record};

/// How much to read from the source at a time.
const READ_SIZE: usize = 256 * 1024;

/// Why reading records failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The source could not be read. (Its cause is in the message, not in the error
    /// chain, so that a chain printed whole does not say it twice.)
    #[error("reading the RDB input: {0}")]
    Io(io::Error),
    /// The bytes are not a valid RDB.
    #[error(transparent)]
    Decode(#[from] Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads an RDB from a [`Read`] source (a file, stdin) and yields its records.
///
/// ```no_run
/// use redis_ferry::rdb::RdbReader;
/// let file = std::fs::File::open("dump.rdb")?;
/// let mut reader = RdbReader::new(file);
/// while let Some(record) = reader.next_record()? {
///     println!("{record:?}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RdbReader<R> {
    source: R,
    decoder: Decoder,
    read_size: usize,
}

impl<R: Read> RdbReader<R> {
    /// A reader with default decoder options.
    pub fn new(source: R) -> RdbReader<R> {
        RdbReader::with_options(source, DecoderOptions::default())
    }

    /// A reader with the given decoder options.
    pub fn with_options(source: R, opts: DecoderOptions) -> RdbReader<R> {
        RdbReader { source, decoder: Decoder::with_options(opts), read_size: READ_SIZE }
    }

    /// Reads at most `n` bytes per call to the source (tests use tiny reads).
    pub fn read_size(mut self, n: usize) -> RdbReader<R> {
        self.read_size = n.max(1);
        self
    }

    /// The decoder, for its offset and header.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The next record, `None` after [`Record::End`]. The record borrows the reader
    /// until the next call.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        loop {
            if self.decoder.advance()? {
                return Ok(self.decoder.current());
            }
            if self.decoder.is_done() {
                return Ok(None);
            }
            self.fill()?;
        }
    }

    /// Reads more input straight into the decoder's buffer (one copy, from the kernel).
    fn fill(&mut self) -> Result<(), ReadError> {
        let buf = self.decoder.input_buffer();
        let old = buf.len();
        buf.resize(old + self.read_size, 0);
        let n = loop {
            match self.source.read(&mut buf[old..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        buf.truncate(old + *n.as_ref().unwrap_or(&0));
        if n? == 0 {
            self.decoder.finish();
        }
        Ok(())
    }

    /// After the end: reads whatever follows the RDB in the source, and returns its length
    /// (bytes a file should not have).
    pub fn trailing_bytes(&mut self) -> io::Result<u64> {
        let buffered = self.decoder.buffered().len() as u64;
        Ok(buffered + io::copy(&mut self.source, &mut io::sink())?)
    }
}
