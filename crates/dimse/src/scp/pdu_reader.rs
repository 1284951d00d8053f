//! Reading PDUs off the wire: the 6-byte header first, its length checked against
//! a maximum before anything else is read, then the body.

use std::io::{self, Read};

use dicom_ul::Pdu;
use dicom_ul::pdu::{MAXIMUM_PDU_SIZE, PDataValue, PDataValueType};

use super::error::ScpError;

/// PDU type of P-DATA-TF.
const P_DATA_TF: u8 = 0x04;
/// Bytes of a PDU header: type, reserved, 4-byte length.
pub(super) const PDU_HEADER_LEN: usize = 6;

/// Reads PDUs of at most a maximum length, reusing one buffer.
///
/// P-DATA-TF, the hot path of C-STORE receiving, is decoded here: each PDV's data
/// is read from the stream straight into its own `Vec` (one copy, no intermediate
/// PDU buffer). Every other PDU is read into the reused buffer and decoded by
/// dicom-ul's `read_pdu`.
///
/// A PDU longer than the maximum fails with [`ScpError::PduTooLong`] before its
/// body is read: answer it with the A-ABORT of [`ScpError::abort_source`].
#[derive(Debug)]
pub struct PduReader {
    max_pdu_length: u32,
    buffer: Vec<u8>,
}

impl PduReader {
    /// A reader refusing PDUs whose body is longer than `max_pdu_length` bytes.
    pub fn new(max_pdu_length: u32) -> Self {
        PduReader {
            max_pdu_length,
            buffer: Vec::new(),
        }
    }

    /// The maximum PDU length accepted.
    pub fn max_pdu_length(&self) -> u32 {
        self.max_pdu_length
    }

    /// Reads one PDU, waiting as long as the stream's read timeout allows per read.
    ///
    /// # Errors
    /// [`ScpError::Timeout`], [`ScpError::Closed`], [`ScpError::PduTooLong`],
    /// [`ScpError::Malformed`] or [`ScpError::Io`].
    pub fn read<R: Read + ?Sized>(&mut self, stream: &mut R) -> Result<Pdu, ScpError> {
        let mut header = [0u8; PDU_HEADER_LEN];
        stream.read_exact(&mut header).map_err(ScpError::from_io)?;
        let length = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
        if length > self.max_pdu_length {
            return Err(ScpError::PduTooLong {
                length,
                max: self.max_pdu_length,
            });
        }
        if header[0] == P_DATA_TF {
            return read_p_data(stream, length as usize);
        }
        self.buffer.clear();
        self.buffer.extend_from_slice(&header);
        self.buffer.resize(PDU_HEADER_LEN + length as usize, 0);
        stream
            .read_exact(&mut self.buffer[PDU_HEADER_LEN..])
            .map_err(ScpError::from_io)?;
        decode(&self.buffer)
    }
}

/// Decodes one complete PDU (header included) with dicom-ul.
pub(super) fn decode(bytes: &[u8]) -> Result<Pdu, ScpError> {
    match dicom_ul::pdu::read_pdu(bytes, MAXIMUM_PDU_SIZE, false) {
        Ok(Some(pdu)) => Ok(pdu),
        Ok(None) => Err(ScpError::Malformed(
            "the PDU ends before its announced length".into(),
        )),
        Err(e) => Err(ScpError::Malformed(e.to_string())),
    }
}

/// The body of a P-DATA-TF PDU: PDV items, each a 4-byte length, the presentation
/// context ID, the message control header and the data (PS3.8 9.3.5).
fn read_p_data<R: Read + ?Sized>(stream: &mut R, length: usize) -> Result<Pdu, ScpError> {
    let mut left = length;
    let mut data = Vec::with_capacity(1);
    while left > 0 {
        if left < 6 {
            return Err(ScpError::Malformed(format!(
                "P-DATA-TF with {left} stray bytes after its last PDV"
            )));
        }
        let mut item = [0u8; 6];
        stream.read_exact(&mut item).map_err(ScpError::from_io)?;
        let item_length = u32::from_be_bytes([item[0], item[1], item[2], item[3]]) as usize;
        if item_length < 2 || item_length > left - 4 {
            return Err(ScpError::Malformed(format!(
                "PDV item of {item_length} bytes in a P-DATA-TF of {length}"
            )));
        }
        let control = item[5];
        let mut bytes = vec![0u8; item_length - 2];
        read_exact(stream, &mut bytes)?;
        data.push(PDataValue {
            presentation_context_id: item[4],
            value_type: if control & 0x01 != 0 {
                PDataValueType::Command
            } else {
                PDataValueType::Data
            },
            is_last: control & 0x02 != 0,
            data: bytes,
        });
        left -= 4 + item_length;
    }
    Ok(Pdu::PData { data })
}

fn read_exact<R: Read + ?Sized>(stream: &mut R, buf: &mut [u8]) -> Result<(), ScpError> {
    match stream.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ScpError::Closed),
        Err(e) => Err(ScpError::from_io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::write_fragments;

    #[test]
    fn p_data_is_decoded_like_dicom_ul_does() {
        let payload: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        write_fragments(&mut wire, 3, PDataValueType::Data, &payload, 2000).unwrap();
        let mut reader = PduReader::new(16_384);
        let mut cursor = &wire[..];
        let mut joined = Vec::new();
        let mut offset = 0;
        while !cursor.is_empty() {
            let pdu = reader.read(&mut cursor).unwrap();
            let end = wire.len() - cursor.len();
            let expected = dicom_ul::pdu::read_pdu(&wire[offset..end], 16_384, true)
                .unwrap()
                .unwrap();
            assert_eq!(pdu, expected);
            offset = end;
            if let Pdu::PData { data } = pdu {
                joined.extend(data.into_iter().flat_map(|p| p.data));
            }
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn a_pdu_over_the_maximum_is_refused_before_its_body_is_read() {
        let mut wire = vec![0x04, 0x00];
        wire.extend_from_slice(&20_000u32.to_be_bytes());
        let mut reader = PduReader::new(16_384);
        let error = reader.read(&mut &wire[..]).unwrap_err();
        assert!(
            matches!(
                error,
                ScpError::PduTooLong {
                    length: 20_000,
                    max: 16_384
                }
            ),
            "{error}"
        );
        assert!(error.abort_source().is_some());
    }

    #[test]
    fn malformed_pdv_lengths_are_errors_not_panics() {
        for item_length in [0u32, 1, 100, u32::MAX] {
            let mut wire = vec![0x04, 0x00, 0, 0, 0, 10];
            wire.extend_from_slice(&item_length.to_be_bytes());
            wire.extend_from_slice(&[1, 0x02, 0, 0, 0, 0]);
            let error = PduReader::new(16_384).read(&mut &wire[..]).unwrap_err();
            assert!(matches!(error, ScpError::Malformed(_)), "{error}");
        }
        let error = PduReader::new(16_384)
            .read(&mut &[0x04u8, 0, 0, 0, 0, 3, 0, 0, 0][..])
            .unwrap_err();
        assert!(matches!(error, ScpError::Malformed(_)), "{error}");
    }

    #[test]
    fn other_pdus_go_through_dicom_ul() {
        let mut wire = Vec::new();
        dicom_ul::pdu::write_pdu(&mut wire, &Pdu::ReleaseRQ).unwrap();
        dicom_ul::pdu::write_pdu(&mut wire, &Pdu::ReleaseRP).unwrap();
        let mut reader = PduReader::new(16_384);
        let mut cursor = &wire[..];
        assert_eq!(reader.read(&mut cursor).unwrap(), Pdu::ReleaseRQ);
        assert_eq!(reader.read(&mut cursor).unwrap(), Pdu::ReleaseRP);
        assert!(matches!(reader.read(&mut cursor), Err(ScpError::Closed)));
    }
}
