//! RLE Lossless encoder (PS3.5 Annex G): dicom-rs decodes RLE but cannot encode it.

/// Encode one native frame (little endian, pixel-interleaved) as an RLE Lossless fragment.
///
/// Per PS3.5 G.2 the frame is split into one segment per byte plane: for each sample (R, G, B or
/// the single grey sample) its most significant byte first. Each segment is PackBits-encoded
/// row by row, never running across a row boundary (G.3.1), and padded to an even length (G.5).
/// The fragment starts with the 64-byte RLE header: the segment count and 15 offsets.
///
/// # Panics
/// If `frame.len()` is not `rows * columns * samples_per_pixel * bytes_per_sample`, or the frame
/// would need more than the 15 segments the header can describe (never for 8/16-bit, 1 or 3
/// samples). Callers pass geometry they validated.
pub fn rle_encode_frame(
    frame: &[u8],
    rows: u16,
    columns: u16,
    samples_per_pixel: u16,
    bytes_per_sample: u16,
) -> Vec<u8> {
    let (rows, columns) = (usize::from(rows), usize::from(columns));
    let (spp, bps) = (
        usize::from(samples_per_pixel),
        usize::from(bytes_per_sample),
    );
    let pixel_stride = spp * bps;
    assert_eq!(frame.len(), rows * columns * pixel_stride, "frame length");
    let segments = spp * bps;
    assert!(segments <= 15, "RLE header holds at most 15 segments");

    let mut out = vec![0u8; 64];
    out[0..4].copy_from_slice(&(segments as u32).to_le_bytes());
    let mut plane_row = Vec::with_capacity(columns);
    for sample in 0..spp {
        for significance in (0..bps).rev() {
            let segment_index = sample * bps + (bps - 1 - significance);
            let offset = out.len() as u32;
            let slot = 4 + 4 * segment_index;
            out[slot..slot + 4].copy_from_slice(&offset.to_le_bytes());
            let byte_in_pixel = sample * bps + significance;
            for row in 0..rows {
                plane_row.clear();
                let row_start = row * columns * pixel_stride;
                plane_row.extend(
                    (0..columns).map(|col| frame[row_start + col * pixel_stride + byte_in_pixel]),
                );
                packbits_row(&plane_row, &mut out);
            }
            if out.len() % 2 == 1 {
                out.push(0);
            }
        }
    }
    out
}

/// PackBits one row: a header byte n in 0..=127 copies the next n+1 bytes literally; n in
/// -127..=-1 repeats the next byte 1-n times; -128 is never written (G.3.1).
fn packbits_row(row: &[u8], out: &mut Vec<u8>) {
    let n = row.len();
    let mut i = 0;
    while i < n {
        let mut run = 1;
        while i + run < n && run < 128 && row[i + run] == row[i] {
            run += 1;
        }
        if run >= 2 {
            out.push((257 - run) as u8);
            out.push(row[i]);
            i += run;
            continue;
        }
        // Literal: stop before a run of 3 (a run of 2 costs the same either way) or at 128 bytes.
        let start = i;
        while i < n && i - start < 128 {
            if i + 2 < n && row[i] == row[i + 1] && row[i] == row[i + 2] {
                break;
            }
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&row[start..i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent PackBits decoder, written from G.3.2 for the test only.
    fn unpack(mut data: &[u8], expected_len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < expected_len {
            let header = data[0] as i8;
            assert_ne!(header, -128, "encoder wrote the reserved header -128");
            data = &data[1..];
            if header >= 0 {
                let count = header as usize + 1;
                out.extend_from_slice(&data[..count]);
                data = &data[count..];
            } else if header != -128 {
                let count = 1 - header as isize;
                out.extend(std::iter::repeat_n(data[0], count as usize));
                data = &data[1..];
            }
        }
        out
    }

    #[test]
    fn packbits_matches_the_apple_technical_note_example() {
        // The example of Apple TN1023, which PS3.5 Annex G's scheme is identical to.
        let raw = [
            0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0x22,
            0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
        ];
        let mut packed = Vec::new();
        packbits_row(&raw, &mut packed);
        assert_eq!(
            packed,
            [
                0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7,
                0xAA
            ]
        );
    }

    #[test]
    fn long_runs_and_long_literals_are_split_at_128_bytes() {
        let mut raw = vec![7u8; 300];
        raw.extend((0..=255u8).cycle().take(300));
        let mut packed = Vec::new();
        packbits_row(&raw, &mut packed);
        assert_eq!(unpack(&packed, raw.len()), raw);
    }

    #[test]
    fn runs_never_cross_a_row_boundary() {
        let frame = [0x11u8; 8]; // 2 rows x 4 columns of the same 8-bit value
        let encoded = rle_encode_frame(&frame, 2, 4, 1, 1);
        assert_eq!(&encoded[64..], &[0xFD, 0x11, 0xFD, 0x11]);
    }

    #[test]
    fn sixteen_bit_rgb_frame_has_six_segments_most_significant_byte_first() {
        let (rows, cols) = (3u16, 5u16);
        let frame: Vec<u8> = (0..(rows as usize * cols as usize * 6))
            .map(|i| (i * 37 % 251) as u8)
            .collect();
        let encoded = rle_encode_frame(&frame, rows, cols, 3, 2);
        assert_eq!(u32::from_le_bytes(encoded[0..4].try_into().unwrap()), 6);
        let offsets: Vec<usize> = (0..6)
            .map(|i| u32::from_le_bytes(encoded[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
            .collect();
        assert_eq!(offsets[0], 64);
        let pixels = usize::from(rows) * usize::from(cols);
        // Segment 0 is red MSB: byte 1 of every 6-byte pixel.
        let red_msb: Vec<u8> = frame.iter().skip(1).step_by(6).copied().collect();
        assert_eq!(unpack(&encoded[offsets[0]..offsets[1]], pixels), red_msb);
        // Segment 5 is blue LSB: byte 4.
        let blue_lsb: Vec<u8> = frame.iter().skip(4).step_by(6).copied().collect();
        assert_eq!(unpack(&encoded[offsets[5]..], pixels), blue_lsb);
        assert!(offsets.iter().all(|o| o % 2 == 0), "segments start even");
        assert_eq!(encoded.len() % 2, 0, "fragment has even length");
    }
}
