//! Handwriting drawn stroke by stroke, the way a pen moves, from KanjiVG's stroke data
//! (`ocr-models/kanjivg/strokes.tsv`, made by `scripts/setup.sh`; CC BY-SA 3.0).
//!
//! A handwriting font draws every character the same way with an even line; a person does not.
//! Each writer ([`Hand`]) has a size, slant, width of line, steadiness and haste; each
//! character is then written stroke by stroke: the stroke's control points wander, the whole
//! stroke drifts, the line swells where the pen presses and thins where it sweeps off
//! (はらい), a ballpoint skips a little, and a hasty writer joins one stroke to the next with a
//! faint trace where the pen did not quite lift.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use image::GrayImage;
use kurbo::{Affine, BezPath, PathEl, Point, Vec2};
use rand::Rng;

/// KanjiVG's glyph box: 109 × 109 units.
const UNITS: f64 = 109.0;

/// How a stroke ends, from KanjiVG's stroke type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// A sweep (㇒ ㇏ ㇓ ㇀): the pen lifts as it moves, the line thins to a point.
    Sweep,
    /// A flick at the end (㇚ ㇆ ㇟ ㇙ ㇈ ㇂): thins over the last stretch.
    Flick,
    /// A dot (㇔): starts light, pressed at its end.
    Dot,
    /// Stopped (とめ): even, a little lighter as the pen leaves.
    Stop,
}

impl Ending {
    fn of(kind: char) -> Ending {
        match kind {
            '㇒' | '㇏' | '㇓' | '㇀' => Ending::Sweep,
            '㇚' | '㇆' | '㇟' | '㇙' | '㇈' | '㇂' => Ending::Flick,
            '㇔' => Ending::Dot,
            _ => Ending::Stop,
        }
    }

    /// The pen's pressure at `t` (0 = where the stroke starts, 1 = its end), 0..≈1.15.
    fn pressure(self, t: f64) -> f64 {
        // A ballpoint leaves a small blob where it lands.
        let landing = if t < 0.04 { 1.15 } else { 1.0 };
        let fade = |from: f64, to: f64| if t <= from { 1.0 } else { 1.0 - (1.0 - to) * (t - from) / (1.0 - from) };
        landing
            * match self {
                Ending::Sweep => fade(0.6, 0.25),
                Ending::Flick => fade(0.85, 0.35),
                Ending::Dot => 0.7 + 0.4 * t,
                Ending::Stop => fade(0.9, 0.8),
            }
    }
}

struct Stroke {
    ending: Ending,
    path: BezPath,
}

/// A character's strokes and how far its drawing spans across the box (units).
struct Glyph {
    strokes: Vec<Stroke>,
    left: f64,
    right: f64,
}

/// Every character KanjiVG draws (about 6,700: kana, JIS kanji, digits, Latin letters).
pub struct Strokes {
    chars: HashMap<char, Glyph>,
}

impl Strokes {
    /// `strokes.tsv` from the resource directory (`HOZON_KANJIVG` to point elsewhere).
    pub fn load() -> anyhow::Result<Strokes> {
        let path = crate::resources::path("HOZON_KANJIVG", "ocr-models/kanjivg/strokes.tsv");
        Strokes::read(&path)
    }

    pub fn read(path: &Path) -> anyhow::Result<Strokes> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("KanjiVG stroke data {}: not readable (scripts/setup.sh makes it; `make setup`)", path.display())
        })?;
        Strokes::parse(&text).with_context(|| format!("KanjiVG stroke data {}", path.display()))
    }

    /// One character per line: the character, then its strokes in writing order, each its
    /// KanjiVG type (one character, `?` if none) a space and SVG path data; tab-separated.
    /// `#` starts a comment line.
    pub fn parse(text: &str) -> anyhow::Result<Strokes> {
        let mut chars = HashMap::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty() && !l.starts_with('#')) {
            let mut cells = line.split('\t');
            let mut first = cells.next().unwrap_or_default().chars();
            let (Some(c), None) = (first.next(), first.next()) else {
                anyhow::bail!("line {}: the first cell must be one character", n + 1);
            };
            let strokes = cells
                .map(|cell| {
                    let (kind, d) = cell.split_once(' ').unwrap_or(("?", cell));
                    if d.trim().is_empty() {
                        anyhow::bail!("line {} ({c}): a stroke without path data", n + 1);
                    }
                    let path = BezPath::from_svg(d)
                        .map_err(|e| anyhow::anyhow!("line {} ({c}): stroke path {d:?}: {e}", n + 1))?;
                    Ok(Stroke { ending: Ending::of(kind.chars().next().unwrap_or('?')), path })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            if strokes.is_empty() {
                anyhow::bail!("line {} ({c}): no strokes", n + 1);
            }
            let (left, right) = strokes.iter().fold((f64::MAX, f64::MIN), |(l, r), s| {
                let b = kurbo::Shape::bounding_box(&s.path);
                (l.min(b.x0), r.max(b.x1))
            });
            chars.insert(c, Glyph { strokes, left, right });
        }
        if chars.is_empty() {
            anyhow::bail!("no characters");
        }
        Ok(Strokes { chars })
    }

    pub fn has(&self, c: char) -> bool {
        self.chars.contains_key(&c)
    }
}

/// One writer's way with a pen (drawn once per applicant).
#[derive(Debug, Clone, Copy)]
pub struct Hand {
    /// How far a stroke's control points wander (KanjiVG units).
    jitter: f64,
    /// How far a whole stroke lands from where it belongs (units).
    drift: f64,
    /// Half the line's width at full pressure (pixels at 300 dpi).
    radius: f64,
    /// Chance that a stroke runs on into the next (a join).
    haste: f64,
    /// Horizontal shear: the writing leans right (> 0) or left.
    shear: f64,
    /// Width over height of the writer's characters.
    aspect: f64,
}

impl Hand {
    pub fn draw(rng: &mut impl Rng, slant_deg: f32) -> Hand {
        Hand {
            jitter: rng.gen_range(1.2..3.4),
            drift: rng.gen_range(1.0..3.0),
            radius: rng.gen_range(1.7..2.9),
            haste: rng.gen_range(0.0..0.45),
            shear: f64::from(slant_deg).to_radians().tan() * 2.0 + rng.gen_range(-0.08..0.12),
            aspect: rng.gen_range(0.88..1.08),
        }
    }

    /// Writes `c` with its glyph box's top left at (x, y), `size` pixels high, in ink `pen`
    /// (0 black … 255 paper); returns the advance, or `None` when KanjiVG lacks `c`.
    #[allow(clippy::too_many_arguments)]
    pub fn glyph(
        &self,
        strokes: &Strokes,
        ink: &mut GrayImage,
        c: char,
        x: f64,
        y: f64,
        size: f64,
        pen: u8,
        rng: &mut impl Rng,
    ) -> Option<i32> {
        let glyph = strokes.chars.get(&c)?;
        // KanjiVG draws within about four fifths of its box; a font's em is filled more.
        let scale = size * 1.15 / UNITS;
        // A full-width character is written in its box; a narrow one (digit, letter) where the
        // pen is, a little after the previous one, however narrow it is drawn.
        let narrow = c.is_ascii();
        let (centre, at) = if narrow {
            let half = (glyph.right - glyph.left) / 2.0 * scale * self.aspect;
            (Vec2::new((glyph.left + glyph.right) / 2.0, UNITS / 2.0), x + size * 0.08 + half)
        } else {
            (Vec2::new(UNITS / 2.0, UNITS / 2.0), x + size / 2.0)
        };
        let place = Affine::translate((at, y + size / 2.0))
            * Affine::rotate(rng.gen_range(-0.05..0.05))
            * Affine::new([scale * self.aspect, 0.0, -self.shear * scale, scale, 0.0, 0.0])
            * Affine::translate(-centre);
        let mut last_end: Option<Point> = None;
        let mut max_x = x;
        for stroke in &glyph.strokes {
            let shift = Vec2::new(normal(rng) * self.drift, normal(rng) * self.drift);
            let mut wander = |p: Point| p + shift + Vec2::new(normal(rng) * self.jitter, normal(rng) * self.jitter);
            let moved: BezPath = stroke
                .path
                .elements()
                .iter()
                .map(|el| match *el {
                    PathEl::MoveTo(p) => PathEl::MoveTo(wander(p)),
                    PathEl::LineTo(p) => PathEl::LineTo(wander(p)),
                    PathEl::QuadTo(a, p) => PathEl::QuadTo(wander(a), wander(p)),
                    PathEl::CurveTo(a, b, p) => PathEl::CurveTo(wander(a), wander(b), wander(p)),
                    PathEl::ClosePath => PathEl::ClosePath,
                })
                .collect();
            let points = polyline(place * moved);
            let (Some(&first), Some(&end)) = (points.first(), points.last()) else { continue };
            if let Some(prev) = last_end
                && prev.distance(first) < size * 0.45
                && rng.gen_bool(self.haste)
            {
                // The pen did not quite lift: a faint trace to where the next stroke starts.
                let bow = Vec2::new(normal(rng), normal(rng)) * size * 0.04;
                let mid = prev.midpoint(first) + bow;
                let join = polyline(BezPath::from_vec(vec![PathEl::MoveTo(prev), PathEl::QuadTo(mid, first)]));
                ink_along(ink, &join, self.radius * 0.4, pen, |_| 0.7, rng);
            }
            ink_along(ink, &points, self.radius, pen, |t| stroke.ending.pressure(t), rng);
            max_x = points.iter().fold(max_x, |m, p| m.max(p.x));
            last_end = Some(end);
        }
        // Full-width characters take their box; narrow ones (digits, letters) what they drew.
        let advance = if narrow { (max_x - x).max(size * 0.3) + size * 0.14 } else { size * 0.98 };
        Some(advance.round() as i32)
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let v: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
    (-2.0 * u.ln()).sqrt() * v.cos()
}

/// The path as points no more than half a pixel apart.
fn polyline(path: BezPath) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    kurbo::flatten(path.elements().iter().copied(), 0.15, |el| {
        let to = match el {
            PathEl::MoveTo(p) | PathEl::LineTo(p) => p,
            _ => return,
        };
        if let Some(&from) = out.last() {
            let steps = (from.distance(to) / 0.5).ceil().max(1.0) as usize;
            out.extend((1..=steps).map(|k| from.lerp(to, k as f64 / steps as f64)));
        } else {
            out.push(to);
        }
    });
    out
}

/// Inks a line along `points`: a round nib of `radius × pressure(t)` at each point, the
/// ballpoint's flow varying slowly along the stroke.
fn ink_along(
    ink: &mut GrayImage,
    points: &[Point],
    radius: f64,
    pen: u8,
    pressure: impl Fn(f64) -> f64,
    rng: &mut impl Rng,
) {
    let (w, h) = (ink.width() as i64, ink.height() as i64);
    let (phase, wave) = (rng.gen_range(0.0..std::f64::consts::TAU), rng.gen_range(0.02..0.08));
    let last = points.len().saturating_sub(1).max(1) as f64;
    let dark = 255.0 - f64::from(pen);
    for (i, p) in points.iter().enumerate() {
        let t = i as f64 / last;
        let press = pressure(t);
        let r = (radius * press).max(0.45);
        // Ink flow: a slow swell and the odd thin patch where the ball skips.
        let flow = (0.85 + 0.15 * (phase + i as f64 * wave).sin()) * press.clamp(0.55, 1.0);
        let (x0, x1) = ((p.x - r - 1.0).floor() as i64, (p.x + r + 1.0).ceil() as i64);
        let (y0, y1) = ((p.y - r - 1.0).floor() as i64, (p.y + r + 1.0).ceil() as i64);
        for py in y0.max(0)..=y1.min(h - 1) {
            for px in x0.max(0)..=x1.min(w - 1) {
                let d = ((px as f64 + 0.5 - p.x).powi(2) + (py as f64 + 0.5 - p.y).powi(2)).sqrt();
                let cover = (r + 0.5 - d).clamp(0.0, 1.0) * flow;
                if cover > 0.0 {
                    let v = (255.0 - cover * dark).round() as u8;
                    let cell = ink.get_pixel_mut(px as u32, py as u32);
                    cell.0[0] = cell.0[0].min(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const ONE: &str = "# comment\n一\t㇐ M11,54.25c3.73,1.08,8.1,1.04,11.88,0.86c20.5-0.99,52.49-4.27,75.33-4.35\n\
                       人\t㇒ M54.5,17.5c0.5,2,0.25,4-0.75,7C49,39,32,64,13.75,79.75\t㇏ M52,42c7.5,11.5,26.75,33.5,44.5,41.5\n";

    fn ink_of(hand: &Hand, strokes: &Strokes, c: char, seed: u64) -> GrayImage {
        let mut ink = GrayImage::from_pixel(140, 140, image::Luma([255]));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        hand.glyph(strokes, &mut ink, c, 20.0, 20.0, 100.0, 30, &mut rng).expect("known character");
        ink
    }

    #[test]
    fn parses_strokes_and_names_the_bad_line() {
        let s = Strokes::parse(ONE).unwrap();
        assert!(s.has('一') && s.has('人') && !s.has('二'));
        assert_eq!(s.chars[&'人'].strokes[1].ending, Ending::Sweep);
        let err = format!("{:#}", Strokes::parse("一\t㇐ M11,54 Q\n").err().unwrap());
        assert!(err.contains("line 1") && err.contains('一'), "{err}");
        assert!(Strokes::parse("一二\t? M1,1L2,2\n").is_err());
        assert!(Strokes::parse("# nothing\n").is_err());
    }

    #[test]
    fn each_writing_differs_and_sweeps_thin_out() {
        let s = Strokes::parse(ONE).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let hand = Hand::draw(&mut rng, 0.0);
        let (a, b) = (ink_of(&hand, &s, '人', 1), ink_of(&hand, &s, '人', 2));
        let inked = |img: &GrayImage| img.pixels().filter(|p| p.0[0] < 128).count();
        assert!(inked(&a) > 300, "the character is drawn ({} px)", inked(&a));
        let differ = a.pixels().zip(b.pixels()).filter(|(p, q)| (p.0[0] < 128) != (q.0[0] < 128)).count();
        assert!(differ > inked(&a) / 10, "two writings of one character differ ({differ} px)");
        // Unknown characters are left to the caller (the font).
        let mut ink = GrayImage::from_pixel(10, 10, image::Luma([255]));
        assert!(hand.glyph(&s, &mut ink, '二', 0.0, 0.0, 10.0, 30, &mut rng).is_none());
    }

    #[test]
    fn the_shipped_data_covers_what_applicants_write() {
        // Present once `scripts/setup.sh` has run (CI runs it first).
        let s = Strokes::load().expect("KanjiVG stroke data");
        let missing: String = "あいうアイウーカナ東京都新宿区西新宿二丁目8番1号0123456789髙﨑澤濱邊"
            .chars()
            .filter(|c| !s.has(*c))
            .collect();
        assert_eq!(missing, "髙﨑", "KanjiVG lacks these two (the font writes them)");
    }
}
