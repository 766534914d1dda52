//! LOLWUT [VERSION version] [arguments]: Redis's computer-art easter egg,
//! which clients and tools call to check a server is alive and which Redis
//! tests by the shape of its reply.
//!
//! As redis-server 7.0: the art is chosen by version (that of the server
//! unless VERSION says otherwise). Version 5 (and 4.9) draws Georg Nees's
//! "Schotter" with Unicode Braille dots; any other version, including the
//! server's own 7, replies only the `Redis ver. 7.0.15` line. The art is
//! random by design (so is Redis's): only its shape is deterministic.

use bytes::Bytes;

use super::connection::REDIS_VERSION;
use super::{parse_i64, Client, ERR_NOT_INTEGER};
use crate::protocol::Frame;

/// LOLWUT [VERSION version] [arguments].
pub fn lolwut(c: &mut Client, args: &[Bytes]) {
    let mut rest = &args[1..];
    let mut version = 7u32;
    if args.len() >= 3 && args[1].eq_ignore_ascii_case(b"version") {
        let Some(v) = parse_i64(&args[2]) else {
            return c.error(ERR_NOT_INTEGER);
        };
        // Redis prints the number as an unsigned int: negative ones wrap
        // to a version with no art of its own.
        version = v as u32;
        rest = &args[3..];
    }
    let text = if version == 5 {
        match schotter_args(rest) {
            Some((cols, per_row, per_col)) => {
                let mut t = render(&schotter(cols, per_row, per_col, &mut Rng::seeded()));
                t.push_str("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. ");
                t.push_str(REDIS_VERSION);
                t.push('\n');
                t
            }
            None => return c.error(ERR_NOT_INTEGER),
        }
    } else {
        format!("Redis ver. {REDIS_VERSION}\n")
    };
    c.reply(Frame::Verbatim("txt", Bytes::from(text)));
}

/// Version 5's optional arguments: terminal columns (66), squares per row
/// (8) and per column (12), clamped as Redis clamps them. None if one is
/// not an integer.
fn schotter_args(rest: &[Bytes]) -> Option<(i64, i64, i64)> {
    let mut v = [66i64, 8, 12];
    for (slot, a) in v.iter_mut().zip(rest) {
        *slot = parse_i64(a)?;
    }
    Some((v[0].clamp(1, 1000), v[1].clamp(1, 200), v[2].clamp(1, 200)))
}

/// A grid of pixels, on or off.
struct Canvas {
    width: i32,
    height: i32,
    pixels: Vec<bool>,
}

impl Canvas {
    fn new(width: i32, height: i32) -> Canvas {
        let n = usize::try_from(width.max(0)).unwrap_or(0)
            * usize::try_from(height.max(0)).unwrap_or(0);
        Canvas {
            width,
            height,
            pixels: vec![false; n],
        }
    }

    fn index(&self, x: i32, y: i32) -> Option<usize> {
        if x < 0 || y < 0 || x >= self.width || y >= self.height {
            return None;
        }
        usize::try_from(x + y * self.width).ok()
    }

    fn set(&mut self, x: i32, y: i32) {
        if let Some(i) = self.index(x, y) {
            self.pixels[i] = true;
        }
    }

    fn get(&self, x: i32, y: i32) -> bool {
        self.index(x, y).is_some_and(|i| self.pixels[i])
    }

    /// Bresenham's line from (x1, y1) to (x2, y2).
    fn line(&mut self, mut x1: i32, mut y1: i32, x2: i32, y2: i32) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let sx = if x1 < x2 { 1 } else { -1 };
        let sy = if y1 < y2 { 1 } else { -1 };
        let mut err = dx - dy;
        loop {
            self.set(x1, y1);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// A square of side `size` centred on (x, y), rotated by `angle`: its
    /// corners lie on the circle through them, 90 degrees apart.
    fn square(&mut self, x: i32, y: i32, size: f32, angle: f32) {
        let size = f64::from((size / std::f32::consts::SQRT_2).round());
        let mut k = std::f64::consts::FRAC_PI_4 + f64::from(angle);
        let mut px = [0i32; 4];
        let mut py = [0i32; 4];
        for j in 0..4 {
            px[j] = (k.sin() * size + f64::from(x)).round() as i32;
            py[j] = (k.cos() * size + f64::from(y)).round() as i32;
            k += std::f64::consts::FRAC_PI_2;
        }
        for j in 0..4 {
            self.line(px[j], py[j], px[(j + 1) % 4], py[(j + 1) % 4]);
        }
    }
}

/// A small xorshift generator: the art needs noise, not quality.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng(t | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1].
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Schotter: rows of squares, more displaced and rotated the lower the
/// row, on a canvas two pixels per terminal column wide.
fn schotter(cols: i64, per_row: i64, per_col: i64, rng: &mut Rng) -> Canvas {
    let width = (cols * 2) as i32;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32) as i32 + padding * 2;
    let mut canvas = Canvas::new(width, height);
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut angle = 0.0;
            if y > 1 {
                let scale = y as f32 / per_col as f32;
                let mut r = [rng.unit() * scale, rng.unit() * scale, rng.unit() * scale];
                for v in &mut r {
                    if rng.next() & 1 == 1 {
                        *v = -*v;
                    }
                }
                angle = r[0];
                sx = (sx as f32 + r[1] * side / 3.0) as i32;
                sy = (sy as f32 + r[2] * side / 3.0) as i32;
            }
            canvas.square(sx, sy, side, angle);
        }
    }
    canvas
}

/// The canvas as Braille characters, each one 2x4 pixels, one text line
/// per 4 pixel rows (Redis's `renderCanvas`, newline quirk included).
fn render(canvas: &Canvas) -> String {
    let mut text = String::new();
    let mut y = 0;
    while y < canvas.height {
        let mut x = 0;
        while x < canvas.width {
            let dots = [
                (0, 0),
                (0, 1),
                (0, 2),
                (1, 0),
                (1, 1),
                (1, 2),
                (0, 3),
                (1, 3),
            ];
            let mut byte = 0u32;
            for (bit, (dx, dy)) in dots.iter().enumerate() {
                if canvas.get(x + dx, y + dy) {
                    byte |= 1 << bit;
                }
            }
            text.push(char::from_u32(0x2800 + byte).unwrap_or(' '));
            x += 2;
        }
        if y != canvas.height - 1 {
            text.push('\n');
        }
        y += 4;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schotter_has_redis_shape() {
        let art = render(&schotter(66, 8, 12, &mut Rng(7)));
        // Like Redis's, the text ends with a newline unless the canvas
        // height is one more than a multiple of 4.
        let art = art.strip_suffix('\n').unwrap_or_default();
        let lines: Vec<&str> = art.split('\n').collect();
        // 132 pixels wide: 66 characters per line; 16-pixel squares, 12
        // rows of them plus padding: 196 pixels, 49 lines.
        assert!(lines.iter().all(|l| l.chars().count() == 66));
        assert_eq!(lines.len(), 49);
        assert!(art
            .chars()
            .all(|ch| ch == '\n' || ('\u{2800}'..='\u{28ff}').contains(&ch)));
    }

    #[test]
    fn arguments_are_clamped() {
        let a = [Bytes::from_static(b"0"), Bytes::from_static(b"999")];
        assert_eq!(schotter_args(&a), Some((1, 200, 12)));
        assert_eq!(schotter_args(&[Bytes::from_static(b"x")]), None);
    }
}
