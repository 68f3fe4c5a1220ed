//! Printable documents (certificates, check lists): A4 pages of text lines in IPAex Gothic,
//! embedded as a subset (Type0/CIDFontType2 with a ToUnicode map, so `pdftotext` extracts the
//! text and the file prints the same anywhere). Layout is the caller's: a list of [`Line`]s,
//! or a [`Flow`] that breaks pages for a simple top-to-bottom document.

use std::collections::BTreeMap;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::error::{Error, Result};

pub const PAGE_W: f32 = 595.0;
pub const PAGE_H: f32 = 842.0;

/// One line of text on a page, in points from the bottom left.
#[derive(Debug, Clone)]
pub struct Line {
    pub page: usize,
    pub x: f32,
    pub y: f32,
    pub size: f32,
    pub text: String,
}

/// The document information dictionary.
#[derive(Debug, Clone, Default)]
pub struct Info {
    pub title: String,
    pub subject: String,
    pub keywords: String,
}

/// Top-to-bottom layout with page breaks and a footer per page.
#[derive(Debug, Default)]
pub struct Flow {
    lines: Vec<Line>,
    page: usize,
    y: f32,
}

const TOP: f32 = 790.0;
const BOTTOM: f32 = 50.0;

impl Flow {
    pub fn new() -> Flow {
        Flow { lines: Vec::new(), page: 0, y: TOP }
    }

    /// A line of `size` points at `x`, on a new page if this one is full.
    pub fn line(&mut self, size: f32, x: f32, text: impl Into<String>) {
        if self.y - size < BOTTOM {
            self.page += 1;
            self.y = TOP;
        }
        self.lines.push(Line { page: self.page, x, y: self.y, size, text: text.into() });
        self.y -= size * 1.6;
    }

    /// A table row: cells at the given x positions, cut to `max_chars` characters each.
    pub fn row(&mut self, size: f32, cells: &[(f32, usize, &str)]) {
        if self.y - size < BOTTOM {
            self.page += 1;
            self.y = TOP;
        }
        for (x, max_chars, text) in cells {
            let mut t: String = text.chars().take(*max_chars).collect();
            if text.chars().count() > *max_chars {
                t.pop();
                t.push('…');
            }
            self.lines.push(Line { page: self.page, x: *x, y: self.y, size, text: t });
        }
        self.y -= size * 1.6;
    }

    pub fn gap(&mut self, points: f32) {
        self.y -= points;
    }

    /// The lines with "n / N ページ　footer" on every page, and the page count.
    pub fn finish(mut self, footer: &str) -> (Vec<Line>, usize) {
        let pages = self.page + 1;
        for p in 0..pages {
            self.lines.push(Line {
                page: p,
                x: 240.0,
                y: 25.0,
                size: 8.0,
                text: format!("{} / {} ページ　{footer}", p + 1, pages),
            });
        }
        (self.lines, pages)
    }
}

/// A PDF of `pages` A4 pages holding `lines` (pure apart from reading the font file).
pub fn render(lines: &[Line], pages: usize, meta: &Info) -> Result<Vec<u8>> {
    let font_path = crate::synth::render::GOTHIC;
    let data = std::fs::read(font_path).map_err(|e| Error::Io { path: font_path.into(), source: e })?;
    let face = ttf_parser::Face::parse(&data, 0).map_err(|e| Error::Corrupt(format!("{font_path}: {e}")))?;

    // Glyphs used, remapped to a dense subset numbering (new id = CID).
    let mut remapper = subsetter::GlyphRemapper::new();
    let mut cid_of: BTreeMap<char, u16> = BTreeMap::new();
    for c in lines.iter().flat_map(|l| l.text.chars()) {
        if let std::collections::btree_map::Entry::Vacant(e) = cid_of.entry(c) {
            let gid = face.glyph_index(c).map_or(0, |g| g.0);
            e.insert(remapper.remap(gid));
        }
    }
    let subset = subsetter::subset(&data, 0, &remapper).map_err(|e| Error::Corrupt(format!("font subset: {e}")))?;
    let units = f32::from(face.units_per_em());
    let scale = |v: f32| v * 1000.0 / units;

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let type0 = Ref::new(3);
    let cid = Ref::new(4);
    let descriptor = Ref::new(5);
    let file = Ref::new(6);
    let cmap_ref = Ref::new(7);
    let info = Ref::new(8);
    let page_ids: Vec<Ref> = (0..pages).map(|i| Ref::new(9 + 2 * i as i32)).collect();
    let font_name = Name(b"F1");
    let base = Name(b"HZNSUB+IPAexGothic");

    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().copied()).count(pages as i32);
    pdf.document_info(info)
        .title(TextStr(&meta.title))
        .subject(TextStr(&meta.subject))
        .keywords(TextStr(&meta.keywords))
        .producer(TextStr("hozon"));

    pdf.type0_font(type0)
        .base_font(base)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid)
        .to_unicode(cmap_ref);
    let mut cid_font = pdf.cid_font(cid);
    cid_font
        .subtype(CidFontType::Type2)
        .base_font(base)
        .system_info(SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 })
        .font_descriptor(descriptor)
        .default_width(1000.0)
        .cid_to_gid_map_predefined(Name(b"Identity"));
    {
        let mut widths = cid_font.widths();
        for (c, new) in &cid_of {
            let gid = face.glyph_index(*c).map_or(ttf_parser::GlyphId(0), |g| g);
            let w = face.glyph_hor_advance(gid).map_or(1000.0, |a| scale(f32::from(a)));
            widths.consecutive(*new, [w]);
        }
    }
    cid_font.finish();
    let bbox = face.global_bounding_box();
    pdf.font_descriptor(descriptor)
        .name(base)
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(
            scale(bbox.x_min.into()),
            scale(bbox.y_min.into()),
            scale(bbox.x_max.into()),
            scale(bbox.y_max.into()),
        ))
        .italic_angle(0.0)
        .ascent(scale(face.ascender().into()))
        .descent(scale(face.descender().into()))
        .cap_height(scale(face.capital_height().unwrap_or(face.ascender()).into()))
        .stem_v(80.0)
        .font_file2(file);
    let compressed = miniz_compress(&subset);
    pdf.stream(file, &compressed).filter(Filter::FlateDecode).pair(Name(b"Length1"), subset.len() as i32);
    let mut cmap = pdf_writer::types::UnicodeCmap::new(
        Name(b"HozonToUnicode"),
        SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 },
    );
    for (c, new) in &cid_of {
        cmap.pair(*new, *c);
    }
    pdf.cmap(cmap_ref, &cmap.finish());

    for (p, page_id) in page_ids.iter().enumerate() {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H)).parent(tree).contents(content_id);
        page.resources().fonts().pair(font_name, type0);
        page.finish();
        let mut content = Content::new();
        for l in lines.iter().filter(|l| l.page == p) {
            let encoded: Vec<u8> = l.text.chars().flat_map(|c| cid_of[&c].to_be_bytes()).collect();
            content.begin_text().set_font(font_name, l.size).next_line(l.x, l.y).show(Str(&encoded)).end_text();
        }
        let raw = content.finish();
        pdf.stream(content_id, &miniz_compress(&raw)).filter(Filter::FlateDecode);
    }
    Ok(pdf.finish())
}

fn miniz_compress(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}
