//! `hozon form new BLANK.png`: a template proposed from a scan of a blank form, so an office
//! adapts a new form revision in minutes. The page is brought upright and to 300 dpi and
//! straightened; the table's horizontal rules cut it into rows, each row's full-height
//! vertical rules into cells; the first cell's printed words are the label, read by the
//! recognizer. The value cell becomes the field's zone: a row of many equal cells is a comb
//! (one character each), small squares are tick boxes (one: a checkbox, several: a choice,
//! the words after each box its option). Names, types and checks are guessed from the label
//! (氏名 → `name`, 生年月日 → a date with `past_date`, 郵便番号 → `postal_jp`…); anything not
//! recognised is `field_N`, text, and marked for the office to name. The words above the table
//! become the title and the classification keywords. The proposal is a TOML file that parses
//! as a template; `hozon form check` then shows it over a filled scan.

use std::fmt::Write;

use image::GrayImage;

use super::register::{Rect, deskew, ink_profile, rule_centres};
use super::template::{FieldType, Template};
use super::{Error, read_title, upright};
use crate::ocr::Recognizer;

/// A proposed template: its TOML text and how many fields need a name from the office.
#[derive(Debug)]
pub struct Proposal {
    pub text: String,
    pub fields: usize,
    pub unnamed: usize,
}

/// One field as guessed.
#[derive(Debug, Clone, PartialEq)]
struct Guess {
    name: String,
    label: String,
    kind: FieldType,
    zone: Rect,
    cells: Option<u32>,
    options: Vec<String>,
    boxes: Vec<Rect>,
    checks: Vec<String>,
    known: bool,
}

/// Known labels: (words in the label, field name, type). The first match wins, so longer,
/// more specific wordings come first.
const KNOWN: &[(&[&str], &str, FieldType)] = &[
    (&["フリガナ", "ふりがな", "カナ"], "kana", FieldType::Kana),
    (&["個人番号", "マイナンバー"], "my_number", FieldType::MyNumber),
    (&["受給者番号"], "recipient_no", FieldType::Number),
    (&["保険者番号"], "insurer_number", FieldType::Number),
    (&["郵便番号", "〒"], "postal_code", FieldType::PostalCode),
    (&["電話"], "phone", FieldType::Phone),
    (&["生年月日"], "birth_date", FieldType::Date),
    (&["氏名", "名前", "お名前"], "name", FieldType::Text),
    (&["住所", "所在地"], "address", FieldType::Text),
    (&["病名", "疾病名"], "disease", FieldType::Text),
    (&["性別"], "sex", FieldType::Text),
    (&["年月日", "日付"], "", FieldType::Date),
    (&["番号", "記号"], "", FieldType::Number),
];

fn guess_kind(label: &str) -> (Option<&'static str>, FieldType) {
    KNOWN
        .iter()
        .find(|(words, _, _)| words.iter().any(|w| label.contains(w)))
        .map_or((None, FieldType::Text), |(_, name, kind)| (Some(*name).filter(|n| !n.is_empty()), *kind))
}

/// Small squares (tick boxes, 4–11 mm: 45–130 px at 300 dpi, closed on all four sides, so
/// that a printed 同 or 冂 is not one) inside `cell`: left to right.
fn tick_boxes(image: &GrayImage, ink: u8, cell: Rect) -> Vec<Rect> {
    let dark = |x: u32, y: u32| image.get_pixel(x, y).0[0] < ink;
    let (x0, y0, x1, y1) = (cell.x + 6, cell.y + 6, cell.x + cell.w - 6, cell.y + cell.h - 6);
    // Vertical strokes of box height: (x, top, bottom).
    let mut strokes: Vec<(u32, u32, u32)> = Vec::new();
    for x in x0..x1 {
        let mut y = y0;
        while y < y1 {
            if !dark(x, y) {
                y += 1;
                continue;
            }
            let top = y;
            while y < y1 && dark(x, y) {
                y += 1;
            }
            if (45..=130).contains(&(y - top)) {
                strokes.push((x, top, y));
            }
        }
    }
    let mut boxes: Vec<Rect> = Vec::new();
    for &(xa, ta, ba) in &strokes {
        let side = ba - ta;
        // The right wall: a stroke of the same extent about `side` to the right; the top
        // edge dark between them.
        let right = strokes.iter().find(|&&(xb, tb, bb)| {
            xb > xa + side * 8 / 10 && xb < xa + side * 12 / 10 && tb.abs_diff(ta) <= 4 && bb.abs_diff(ba) <= 4
        });
        let edge = |xb: u32, y: u32| (xa..=xb).filter(|&x| dark(x, y)).count() as u32 * 10 >= (xb - xa) * 9;
        if let Some(&(xb, _, _)) = right
            && edge(xb, ta + 1)
            && edge(xb, ba - 2)
            && !boxes.iter().any(|b| xa < b.x + b.w + 4 && xa + 4 > b.x)
        {
            boxes.push(Rect { x: xa, y: ta, w: xb - xa + 1, h: side });
        }
    }
    boxes
}

/// A comb inside `cell`: at least four evenly spaced boxes drawn within the cell (walls of
/// most of its height). Returns the comb's outer box and its number of cells.
fn comb(image: &GrayImage, ink: u8, cell: Rect) -> Option<(Rect, u32)> {
    let inner = (cell.y + 6, cell.y + cell.h - 6);
    let cols = ink_profile(image, ink, (cell.x, cell.x + cell.w), inner, false);
    let walls: Vec<u32> = rule_centres(&cols, (inner.1 - inner.0) * 6 / 10).into_iter().map(|c| c as u32).collect();
    if walls.len() < 5 {
        return None;
    }
    let gaps: Vec<u32> = walls.windows(2).map(|w| w[1] - w[0]).collect();
    let (min, max) = (*gaps.iter().min()?, *gaps.iter().max()?);
    if min < 30 || max > min + min / 5 {
        return None;
    }
    let (x0, x1) = (walls[0], *walls.last()?);
    let rows = ink_profile(image, ink, (x0, x1), inner, true);
    let edges: Vec<u32> = rule_centres(&rows, (x1 - x0) * 6 / 10).into_iter().map(|c| c as u32).collect();
    let (y0, y1) = match (edges.first(), edges.last()) {
        (Some(&a), Some(&b)) if b > a + 20 => (a, b),
        _ => (cell.y, cell.y + cell.h),
    };
    // The walls' centres lie a pixel inside the 3 px lines that start the boxes.
    Some((
        Rect { x: x0.saturating_sub(1), y: y0.saturating_sub(1), w: x1 - x0 + 3, h: y1 - y0 + 3 },
        walls.len() as u32 - 1,
    ))
}

/// Proposes a template for the blank form `gray` (stating `dpi`, if it does) as form `form`.
pub fn propose(gray: &GrayImage, dpi: Option<f32>, form: &str, ocr: &mut dyn Recognizer) -> Result<Proposal, Error> {
    let frame = upright::find(gray, dpi, ocr)?;
    let upright = upright::apply(gray, frame);
    let (image, _, ink) = deskew(&upright);
    let (w, h) = image.dimensions();
    let rows = ink_profile(&image, ink, (0, w), (0, h), true);
    let horizontal = rule_centres(&rows, w * 4 / 10);
    let (Some(&top), Some(&bottom)) = (horizontal.first(), horizontal.last()) else {
        return Err(super::register::Error::NoTable.into());
    };
    let (top, bottom) = (top as u32, bottom as u32);
    let cols = ink_profile(&image, ink, (0, w), (top, bottom + 1), false);
    let vertical = rule_centres(&cols, (bottom - top) * 8 / 10);
    let (Some(&left), Some(&right)) = (vertical.first(), vertical.last()) else {
        return Err(super::register::Error::NoTable.into());
    };
    let (left, right) = (left as u32, right as u32);
    // Row rules run the table's whole width; shorter lines (a comb's edges, an underline)
    // belong inside a row.
    let across = ink_profile(&image, ink, (left, right + 1), (0, h), true);
    let horizontal: Vec<f32> =
        horizontal.into_iter().filter(|&y| across[y as usize] * 10 >= (right - left) * 9).collect();
    let mut guesses: Vec<Guess> = Vec::new();
    for pair in horizontal.windows(2) {
        let (y0, y1) = (pair[0] as u32 + 3, pair[1] as u32 - 1);
        if y1 <= y0 + 40 {
            continue;
        }
        let band = ink_profile(&image, ink, (left.saturating_sub(4), right + 5), (y0, y1), false);
        let walls = rule_centres(&band, (y1 - y0) * 85 / 100);
        let cells: Vec<Rect> = walls
            .windows(2)
            .map(|p| (p[0] as u32 + 3, p[1] as u32 - 1))
            .filter(|(a, b)| b > &(a + 20))
            .map(|(a, b)| Rect { x: a, y: y0, w: b - a, h: y1 - y0 })
            .collect();
        let [label_cell, values @ ..] = cells.as_slice() else { continue };
        let Some(first) = values.first() else { continue };
        let label = read_title(&image, *label_cell, ink, ocr)?;
        let (name, mut kind) = guess_kind(&label);
        let last = values.last().expect("one value cell at least");
        let zone = Rect { x: first.x, y: first.y, w: last.x + last.w - first.x, h: first.h };
        let mut g = Guess {
            name: name.unwrap_or_default().to_owned(),
            known: name.is_some(),
            label: label.clone(),
            kind,
            zone,
            cells: None,
            options: Vec::new(),
            boxes: Vec::new(),
            checks: Vec::new(),
        };
        let widths: Vec<u32> = values.iter().map(|c| c.w).collect();
        let (min, max) = (widths.iter().min().copied().unwrap_or(0), widths.iter().max().copied().unwrap_or(0));
        if values.len() >= 4 && max <= min + min / 5 {
            // A comb: one character per cell.
            g.cells = Some(values.len() as u32);
            if kind == FieldType::Text {
                kind = FieldType::Number;
            }
            if values.len() == 12 {
                kind = FieldType::MyNumber;
            }
            g.kind = kind;
        } else if let Some((comb, n)) = comb(&image, ink, *first) {
            g.zone = comb;
            g.cells = Some(n);
            g.kind = if n == 12 {
                FieldType::MyNumber
            } else if kind == FieldType::Text {
                FieldType::Number
            } else {
                kind
            };
        } else {
            let boxes = tick_boxes(&image, ink, *first);
            if !boxes.is_empty() {
                for (i, b) in boxes.iter().enumerate() {
                    let end = boxes.get(i + 1).map_or(first.x + first.w, |n| n.x.saturating_sub(10));
                    let caption =
                        Rect { x: b.x + b.w + 4, y: first.y, w: end.saturating_sub(b.x + b.w + 4).max(1), h: first.h };
                    g.options.push(read_title(&image, caption, ink, ocr)?);
                }
                if boxes.len() == 1 {
                    g.kind = FieldType::Checkbox;
                    g.zone = boxes[0];
                    g.options.clear();
                } else {
                    g.kind = FieldType::Choice;
                    g.boxes = boxes;
                    for (i, o) in g.options.iter_mut().enumerate() {
                        if o.is_empty() {
                            *o = format!("選択肢{}", i + 1);
                        }
                    }
                }
            }
        }
        guesses.push(g);
    }
    if guesses.is_empty() {
        return Err(super::register::Error::NoTable.into());
    }
    name_and_check(&mut guesses);
    // The title: the words between the page's top margin and the table.
    let title_zone = Rect { x: left, y: top.saturating_sub(420).max(60), w: right - left, h: 0 };
    let title_zone = Rect { h: top.saturating_sub(title_zone.y + 20).max(1), ..title_zone };
    let title = read_title(&image, title_zone, ink, ocr)?;
    let text = render(form, &title, title_zone, (w, h), (left, top, right, bottom), &guesses);
    Template::parse(std::path::Path::new("(proposal)"), &text)
        .map_err(|e| crate::forms::Error::Proposal(e.to_string()))?;
    Ok(Proposal { text, fields: guesses.len(), unnamed: guesses.iter().filter(|g| !g.known).count() })
}

/// Unique names (`field_N` for unknown labels) and the checks the known fields imply.
fn name_and_check(guesses: &mut [Guess]) {
    let has = |gs: &[Guess], n: &str| gs.iter().any(|g| g.known && g.name == n);
    let (postal, name) = (has(guesses, "postal_code"), has(guesses, "name"));
    let mut used: Vec<String> = Vec::new();
    for (i, g) in guesses.iter_mut().enumerate() {
        if g.name.is_empty() || used.contains(&g.name) {
            g.name = format!("field_{}", i + 1);
            g.known = false;
        }
        used.push(g.name.clone());
        match (g.name.as_str(), g.kind) {
            ("postal_code", FieldType::PostalCode) => g.checks.push("postal_jp".into()),
            ("address", FieldType::Text) if postal => g.checks.push("address_of:postal_code".into()),
            ("kana", FieldType::Kana) if name => g.checks.push("reading_of:name".into()),
            ("birth_date", FieldType::Date) => g.checks.push("past_date".into()),
            ("disease", FieldType::Text) => g.checks.push("designated_disease".into()),
            _ => {}
        }
    }
}

fn zone(r: Rect) -> String {
    format!("{{ x = {}, y = {}, w = {}, h = {} }}", r.x, r.y, r.w, r.h)
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn render(
    form: &str,
    title: &str,
    title_zone: Rect,
    (w, h): (u32, u32),
    (left, top, right, bottom): (u32, u32, u32, u32),
    guesses: &[Guess],
) -> String {
    let mut t = String::new();
    let keyword = if title.is_empty() { form.to_owned() } else { title.to_owned() };
    let _ = writeln!(t, "# Proposed by `hozon form new` from a blank form: check every name, type and zone");
    let _ = writeln!(t, "# (`hozon form check THIS.toml FILLED-SCAN.png` draws them), then add");
    let _ = writeln!(t, "# retention-policies/{form}.toml, or set `class` to an existing record class.");
    let _ = writeln!(t, "# Coordinates: pixels of the page at 300 dpi.");
    let _ = writeln!(t, "form = {}", quoted(form));
    let _ = writeln!(t, "title = {}", quoted(if title.is_empty() { form } else { title }));
    let _ = writeln!(t, "page = {{ width = {w}, height = {h} }}");
    let _ = writeln!(t, "classify = {{ zone = {}, keywords = [{}] }}", zone(title_zone), quoted(&keyword));
    let _ = writeln!(t, "table = {{ left = {left}, top = {top}, right = {right}, bottom = {bottom} }}");
    for g in guesses {
        let _ = writeln!(t);
        if !g.known {
            let _ = writeln!(t, "# 要確認: 項目名を付けてください（ラベル「{}」）", g.label);
        }
        let _ = writeln!(t, "[[field]]");
        let _ = writeln!(t, "name = {}", quoted(&g.name));
        let _ = writeln!(t, "label = {}", quoted(if g.label.is_empty() { &g.name } else { &g.label }));
        let kind = serde_json::to_value(g.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let _ = writeln!(t, "type = {}", quoted(&kind));
        let _ = writeln!(t, "zone = {}", zone(g.zone));
        if let Some(n) = g.cells {
            let _ = writeln!(t, "cells = {n}");
        }
        if !g.options.is_empty() {
            let opts: Vec<String> = g.options.iter().map(|o| quoted(o)).collect();
            let _ = writeln!(t, "options = [{}]", opts.join(", "));
            let boxes: Vec<String> = g.boxes.iter().map(|b| zone(*b)).collect();
            let _ = writeln!(t, "boxes = [{}]", boxes.join(", "));
        }
        if !g.checks.is_empty() {
            let checks: Vec<String> = g.checks.iter().map(|c| quoted(c)).collect();
            let _ = writeln!(t, "checks = [{}]", checks.join(", "));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::render::{Fonts, PageSpec, Row, Value, draw_form};

    #[test]
    fn labels_give_names_types_and_checks() {
        assert_eq!(guess_kind("受診者氏名"), (Some("name"), FieldType::Text));
        assert_eq!(guess_kind("フリガナ"), (Some("kana"), FieldType::Kana));
        assert_eq!(guess_kind("申請年月日"), (None, FieldType::Date));
        assert_eq!(guess_kind("利用目的"), (None, FieldType::Text));
        let g = |name: &str, kind| Guess {
            name: name.into(),
            label: name.into(),
            kind,
            zone: Rect { x: 0, y: 0, w: 1, h: 1 },
            cells: None,
            options: vec![],
            boxes: vec![],
            checks: vec![],
            known: !name.is_empty(),
        };
        let mut gs = vec![
            g("postal_code", FieldType::PostalCode),
            g("address", FieldType::Text),
            g("", FieldType::Text),
            g("address", FieldType::Text),
        ];
        name_and_check(&mut gs);
        assert_eq!(gs[0].checks, ["postal_jp"]);
        assert_eq!(gs[1].checks, ["address_of:postal_code"]);
        assert_eq!((gs[2].name.as_str(), gs[3].name.as_str()), ("field_3", "field_4"), "unknown and repeated");
    }

    /// A blank form drawn like the shipped ones: the proposal finds its table, every row,
    /// the comb, the choice with its options and the checkbox, names what it knows, and puts
    /// each zone within a few pixels of the cell.
    #[test]
    fn a_blank_form_becomes_a_template() {
        let fonts = Fonts::load().expect("fonts: run `make setup`");
        let rows = vec![
            Row { label: "フリガナ", value: Value::Text { text: "", hand: true } },
            Row { label: "氏名", value: Value::Text { text: "", hand: true } },
            Row { label: "生年月日", value: Value::Text { text: "", hand: true } },
            Row { label: "性別", value: Value::Choice { options: &["男", "女"], chosen: "" } },
            Row { label: "郵便番号", value: Value::Text { text: "", hand: true } },
            Row { label: "住所", value: Value::Text { text: "", hand: true } },
            Row { label: "利用目的", value: Value::Text { text: "", hand: true } },
            Row { label: "個人番号", value: Value::Comb { text: "000000000000", hand: true } },
            Row { label: "同意", value: Value::Checkbox { caption: "同意する", ticked: false } },
        ];
        let spec =
            PageSpec { title: "施設利用申込書", subtitle: "（令和8年度）", rows, footer: "東京都" };
        let blank = draw_form(&spec, &fonts);
        let mut ocr = crate::ocr::ppocr::PpOcr::load(&crate::ocr::ppocr::default_model()).expect("PP-OCR model");
        let p = propose(&blank, Some(300.0), "facility_use", &mut ocr).unwrap();
        let t = Template::parse(std::path::Path::new("p.toml"), &p.text).unwrap();
        let names: Vec<&str> = t.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["kana", "name", "birth_date", "sex", "postal_code", "address", "field_7", "my_number", "field_9"],
            "{}",
            p.text
        );
        assert_eq!(p.unnamed, 2);
        let f = |n: &str| t.fields.iter().find(|f| f.name == n).unwrap();
        assert_eq!(f("sex").kind, FieldType::Choice);
        assert_eq!(f("sex").options, ["男", "女"], "{}", p.text);
        assert_eq!((f("my_number").kind, f("my_number").cells), (FieldType::MyNumber, Some(12)));
        let comb = f("my_number").zone;
        assert!(comb.x.abs_diff(800) <= 4 && comb.w.abs_diff(1416) <= 6 && comb.h.abs_diff(120) <= 6, "{comb:?}");
        assert_eq!(f("field_9").kind, FieldType::Checkbox);
        assert_eq!(f("kana").checks, [crate::forms::template::Check::ReadingOf("name".into())]);
        assert!(t.title.contains("施設利用申込書"), "{}", t.title);
        // Zones: inside the value cells of the drawing (table from x = 200, label column
        // 560 px, rows 160 px from y = 520).
        let name = f("name").zone;
        assert!(name.x.abs_diff(763) <= 6 && name.y.abs_diff(683) <= 6, "{:?}", name);
        assert!((name.x + name.w).abs_diff(2277) <= 6 && name.h.abs_diff(154) <= 8, "{:?}", name);
        assert!(f("field_9").zone.w.abs_diff(70) <= 6, "{:?}", f("field_9").zone);
    }
}
