#[test]
#[ignore]
fn dump() {
    let file = std::env::var("DUMP").unwrap();
    let gray = image::open(&file).unwrap().to_luma8();
    let templates = super::template::load_dir(&super::template::default_dir()).unwrap();
    let (image, _, ink) = super::register::deskew(&gray);
    let (w, h) = image.dimensions();
    for t in &templates {
        let map = match super::register::locate(&image, t, ink) { Ok(m) => m, Err(e) => { println!("{} {e} skew={:?}", t.id(), super::register::estimate_skew(&gray, ink)); continue } };
        let r = map.zone(t.classify.zone, w, h);
        super::register::crop_without_rules(&image, r, ink).save(format!("/tmp/dbg/{}-title.png", t.id())).unwrap();
        for f in &t.fields {
            let r = map.zone(f.zone, w, h);
            let c = super::register::crop_without_rules(&image, r, ink);
            println!("{} {} struck={:?}", t.id(), f.name, super::marks::struck_columns(&c));
            c.save(format!("/tmp/dbg/{}-{}.png", t.id(), f.name)).unwrap();
        }
    }
}

#[test]
#[ignore]
fn dump_cols() {
    let file = std::env::var("DUMP").unwrap();
    let gray = image::open(&file).unwrap().to_luma8();
    let templates = super::template::load_dir(&super::template::default_dir()).unwrap();
    let (image, _, ink) = super::register::deskew(&gray);
    let (w, h) = image.dimensions();
    let t = &templates[0];
    let map = super::register::locate(&image, t, ink).unwrap();
    let f = &t.fields[0];
    let r = map.zone(f.zone, w, h);
    let c = super::tighten(super::despeckle(super::register::crop_without_rules(&image, r, ink), ink), ink);
    c.save("/tmp/dbg/tight.png").unwrap();
    let cols: Vec<usize> = (0..c.width()).map(|x| (0..c.height()).filter(|&y| c.get_pixel(x, y).0[0] < ink).count()).collect();
    println!("ink={ink} dims={:?} cols={:?}", c.dimensions(), cols);
}

#[test]
#[ignore]
fn profile() {
    use std::time::Instant;
    let dir = std::env::var("DUMP").unwrap();
    let templates = super::template::load_dir(&super::template::default_dir()).unwrap();
    let mut ocr = crate::ocr::ppocr::PpOcr::load(&crate::ocr::ppocr::default_model()).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "png")).collect();
    files.sort();
    let mut t = [0f64; 6];
    for f in files.iter().take(16) {
        let a = Instant::now();
        let bytes = std::fs::read(f).unwrap();
        let gray = crate::capture::decode_page(&bytes).unwrap().gray;
        let b = Instant::now();
        let ink = super::register::ink_level(&gray);
        let c = Instant::now();
        let skew = super::register::estimate_skew(&gray, ink);
        let d = Instant::now();
        let (img, _, ink) = super::register::deskew(&gray);
        let e = Instant::now();
        for tp in &templates { let _ = super::register::locate(&img, tp, ink); }
        let g = Instant::now();
        let _ = super::read_page(&gray, &templates, &mut ocr).unwrap();
        let h = Instant::now();
        t[0] += (b - a).as_secs_f64(); t[1] += (c - b).as_secs_f64(); t[2] += (d - c).as_secs_f64();
        t[3] += (e - d).as_secs_f64(); t[4] += (g - e).as_secs_f64(); t[5] += (h - g).as_secs_f64();
        let _ = skew;
    }
    println!("per page ms: decode {:.0} otsu {:.0} skew {:.0} deskew(all) {:.0} locate x4 {:.0} read_page(all) {:.0}", t[0]*62.5, t[1]*62.5, t[2]*62.5, t[3]*62.5, t[4]*62.5, t[5]*62.5);
}

struct Timed<'a> { inner: &'a mut dyn crate::ocr::Recognizer, calls: Vec<(usize, usize, f64)> }
impl crate::ocr::Recognizer for Timed<'_> {
    fn name(&self) -> &'static str { "t" }
    fn read_lines(&mut self, crops: &[(&image::GrayImage, crate::ocr::CharSet)]) -> Result<Vec<crate::ocr::LineReading>, crate::ocr::Error> {
        let a = std::time::Instant::now();
        let r = self.inner.read_lines(crops);
        let w: usize = crops.iter().map(|(c, _)| (c.width() as usize * 48) / c.height().max(1) as usize).sum();
        self.calls.push((crops.len(), w, a.elapsed().as_secs_f64()));
        r
    }
}

#[test]
#[ignore]
fn profile_ocr() {
    let dir = std::env::var("DUMP").unwrap();
    let templates = super::template::load_dir(&super::template::default_dir()).unwrap();
    let mut ocr = crate::ocr::ppocr::PpOcr::load(&crate::ocr::ppocr::default_model()).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "png")).collect();
    files.sort();
    for f in files.iter().take(8) {
        let gray = image::open(f).unwrap().to_luma8();
        let mut t = Timed { inner: &mut ocr, calls: vec![] };
        let a = std::time::Instant::now();
        let _ = super::read_page(&gray, &templates, &mut t).unwrap();
        let total = a.elapsed().as_secs_f64();
        println!("{} total {:.0} ms; ocr calls (n, width@48, ms): {:?}", f.file_name().unwrap().to_string_lossy(), total * 1000.0, t.calls.iter().map(|(n, w, s)| (*n, *w, (s * 1000.0) as u32)).collect::<Vec<_>>());
    }
}
