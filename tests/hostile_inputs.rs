//! Hostile-input suite (issue 8, item 2): every importer of `postured template import`
//! (Compliance Manager workbook, flat CSV, OSCAL catalogs in JSON and XML, OSCAL profiles) and
//! the configuration loader (`postured check-config`) fed truncated, empty, huge, deep,
//! amplifying, wrong-type and wrong-encoding files, all generated here.
//!
//! Each case runs the real binary against a real SQLite store holding one good imported
//! template, and must end in a classified error: exit 65 (import) or 64 (configuration), the
//! located problem on stderr, and the store unchanged. Memory is bounded by the importers'
//! caps, which each case names in its expected message (`MAX_TABLE_CELLS`,
//! `MAX_UNCOMPRESSED_BYTES`, `MAX_XML_DEPTH`, ...); as a backstop the child runs with a 1 GiB
//! address-space limit, so an unbounded allocation fails its case (an abort is not exit 65)
//! instead of swapping the machine.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use postured::interchange::excel::{MAX_UNCOMPRESSED_BYTES, MAX_ZIP_ENTRIES};
use postured::interchange::oscal::{
    MAX_INSERT_EXPANSION_BYTES, MAX_JSON_VALUES, MAX_XML_DEPTH, MAX_XML_NODES,
};
use postured::interchange::{MAX_IMPORT_FILE_BYTES, MAX_TABLE_CELLS};

/// A flat CSV template that imports (id `acme-policy`).
const GOOD_CSV: &str = "\
templateId,title,certification,controlName,controlFamily,controlTitle,actionTitle,implementationType,actionScore
acme-policy,ACME security policy,ACME 2026,AC-1,Access,A written policy,Keep an access policy,Documentation,3
";

/// A configuration (the demo's, on a SQLite file of its own) whose store holds the good
/// template.
struct Workspace {
    dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
}

fn postured() -> std::process::Command {
    // 1 GiB of address space; few threads and malloc arenas so that the limit is not spent
    // on reservations.
    let mut c = std::process::Command::new("sh");
    c.args(["-c", "ulimit -v 1048576; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_postured"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env("TOKIO_WORKER_THREADS", "2")
        .env("MALLOC_ARENA_MAX", "2");
    c
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("postured.db");
        let recordings = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo/msgraph");
        let demo =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml"))
                .expect("demo config");
        let config = dir.path().join("postured.toml");
        std::fs::write(
            &config,
            demo.replace(
                "sqlite://postured-demo.db",
                &format!("sqlite://{}", db.display()),
            )
            .replace(
                "replay_dir = \"demo/msgraph\"",
                &format!("replay_dir = \"{}\"", recordings.display()),
            ),
        )
        .expect("config written");
        let ws = Workspace { dir, config, db };
        let good = ws.import("good.csv", GOOD_CSV.as_bytes(), &[]);
        assert!(good.status.success(), "{}", text(&good.stderr));
        ws
    }

    /// `postured template import NAME --config ...` on a file holding `bytes`.
    fn import(&self, name: &str, bytes: &[u8], extra: &[&str]) -> Output {
        let file = self.dir.path().join(name);
        std::fs::write(&file, bytes).expect("file written");
        let out = postured()
            .args(["template", "import"])
            .arg(&file)
            .arg("--config")
            .arg(&self.config)
            .args(extra)
            .output()
            .expect("postured runs");
        std::fs::remove_file(&file).expect("file removed");
        out
    }

    /// The stored templates, as the store lists them.
    fn stored(&self) -> postured::store::model::StoredTemplates {
        let url = format!("sqlite://{}", self.db.display());
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                let store = postured::store::open_store(&url, 1).await.expect("store");
                store.list_templates().await.expect("listing")
            })
    }

    /// Import each case: exit 65, its message on stderr, nothing imported, the store as it
    /// was.
    fn refuses(&self, cases: &[(&str, Vec<u8>, &str)]) {
        let before = self.stored();
        assert_eq!(before.templates.len(), 1);
        for (name, bytes, expected) in cases {
            let out = self.import(name, bytes, &[]);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(65), "{name}: {err}");
            assert!(
                err.contains(expected),
                "{name}: expected {expected:?} in\n{err}"
            );
            assert!(err.contains("nothing was imported"), "{name}: {err}");
            assert_eq!(self.stored(), before, "{name} changed the store");
        }
    }
}

// ---- workbooks ---------------------------------------------------------------------------

/// A valid Compliance Manager workbook (one control, one action).
fn workbook() -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    for (name, rows) in [
        (
            "Template",
            vec![
                vec!["title", "product", "certification"],
                vec!["Hostile", "M365", "H 1"],
            ],
        ),
        (
            "ControlFamily",
            vec![
                vec![
                    "controlName",
                    "controlFamily",
                    "controlTitle",
                    "controlActionTitle",
                ],
                vec!["H-1", "F", "T", "Do it"],
            ],
        ),
        (
            "Actions",
            vec![
                vec!["actionTitle", "implementationType", "actionScore"],
                vec!["Do it", "Operational", "3"],
            ],
        ),
    ] {
        let ws = wb.add_worksheet();
        ws.set_name(name).expect("name");
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                ws.write_string(r as u32, c as u16, *v).expect("cell");
            }
        }
    }
    wb.save_to_buffer().expect("workbook")
}

/// `zip` with the entries of `replace` written instead of (or besides) its own.
fn rezip(zip: &[u8], replace: &[(&str, &[u8])]) -> Vec<u8> {
    let mut source = zip::ZipArchive::new(Cursor::new(zip)).expect("a zip");
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    for i in 0..source.len() {
        let entry = source.by_index_raw(i).expect("entry");
        let name = entry.name().expect("name").into_owned();
        if !replace.iter().any(|(n, _)| *n == name) {
            out.raw_copy_file(entry).expect("copied");
        }
    }
    for (name, data) in replace {
        out.start_file(*name, options).expect("entry");
        out.write_all(data).expect("written");
    }
    out.finish().expect("zip").into_inner()
}

/// Workbooks: empty, truncated, wrong type, wrong encoding, deep, far-apart cells (row 4), a
/// zip bomb (row 5), too many entries, an `.xls`, a file over the size cap.
///
/// Issue 8 row 4: `template import` of a 2 KB workbook with cells `A1` and `XFD1048576`
/// aborted allocating 512 GiB; now exit 65 naming the used range and `MAX_TABLE_CELLS`.
/// Issue 8 row 5: a 2.7 MB zip bomb took the importer to 3.6 GB and an abort; now exit 65
/// naming `MAX_UNCOMPRESSED_BYTES`, nothing inflated.
#[test]
fn hostile_workbooks_are_classified_errors() {
    // The workbook the cases start from imports (into a workspace of its own).
    let good = workbook();
    let ok = Workspace::new().import("ok.xlsx", &good, &[]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let ws = Workspace::new();

    let mut far = rust_xlsxwriter::Workbook::new();
    for name in ["Template", "ControlFamily", "Actions"] {
        let sheet = far.add_worksheet();
        sheet.set_name(name).expect("name");
        sheet.write_string(0, 0, "title").expect("A1");
        sheet
            .write_string(1_048_575, 16_383, "x")
            .expect("XFD1048576");
    }
    let far = far.save_to_buffer().expect("workbook");
    let mut strings =
        b"<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><si><t>"
            .to_vec();
    strings.resize(strings.len() + MAX_UNCOMPRESSED_BYTES as usize, b'A');
    strings.extend_from_slice(b"</t></si></sst>");
    let bomb = rezip(&good, &[("xl/sharedStrings.xml", &strings)]);
    assert!(bomb.len() < 1_000_000);
    let names: Vec<String> = (0..=MAX_ZIP_ENTRIES).map(|i| format!("x/{i}")).collect();
    let many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    let deep_sheet = format!(
        "<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>{}{}</sheetData></worksheet>",
        "<x>".repeat(300_000),
        "</x>".repeat(300_000)
    );
    let latin1 = rezip(
        &good,
        &[("xl/sharedStrings.xml", b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><si><t>caf\xe9</t></si></sst>")],
    );
    let not_xml = rezip(&good, &[("xl/workbook.xml", b"\x89PNG\r\n\x1a\n")]);
    let mut xls = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    xls.resize(4096, 0);
    let huge = vec![0u8; MAX_IMPORT_FILE_BYTES as usize + 1];

    ws.refuses(&[
        ("empty.xlsx", Vec::new(), "workbook: not a workbook"),
        ("truncated.xlsx", good[..good.len() / 2].to_vec(), "workbook: not a workbook"),
        ("csv.xlsx", GOOD_CSV.as_bytes().to_vec(), "workbook: not a workbook"),
        ("not-xml.xlsx", not_xml, "workbook: not a workbook"),
        ("latin1.xlsx", latin1, "workbook: not a workbook"),
        (
            "deep.xlsx",
            rezip(&good, &[("xl/worksheets/sheet1.xml", deep_sheet.as_bytes())]),
            "Template!1:title: missing required column",
        ),
        (
            "far.xlsx",
            far,
            &format!("Template: the sheet's used range A1:XFD1048576 spans 17179869184 cells, more than the {MAX_TABLE_CELLS} accepted"),
        ),
        (
            "bomb.xlsx",
            bomb,
            &format!("more than the {MAX_UNCOMPRESSED_BYTES} accepted"),
        ),
        (
            "many.xlsx",
            rezip(&good, &many),
            &format!("more than the {MAX_ZIP_ENTRIES} accepted"),
        ),
        ("old.xls", xls, "(.xls) is not accepted"),
        (
            "huge.xlsx",
            huge,
            &format!("larger than the {MAX_IMPORT_FILE_BYTES} bytes accepted"),
        ),
    ]);
}

// ---- CSV ---------------------------------------------------------------------------------

/// CSV files: empty, truncated, wrong type (binary), wrong encoding (UTF-16, Latin-1), more
/// cells than `MAX_TABLE_CELLS` (in the file, in one record), wrong-typed values.
#[test]
fn hostile_csv_files_are_classified_errors() {
    let ws = Workspace::new();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(GOOD_CSV.encode_utf16().flat_map(u16::to_le_bytes));
    let latin1 = GOOD_CSV
        .replace("ACME 2026", "ACME caf\u{1}")
        .replace('\u{1}', "\u{e9}");
    let latin1: Vec<u8> = latin1
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("Latin-1"))
        .collect();
    let mut big = String::from(
        "title,certification,controlName,actionTitle,implementationType,actionScore\n",
    );
    for _ in 0..=MAX_TABLE_CELLS / 6 {
        big.push_str("a,,,,,\n");
    }
    let cut = &GOOD_CSV[..GOOD_CSV.len() - 20];
    ws.refuses(&[
        (
            "empty.csv",
            Vec::new(),
            "empty.csv!1:title: missing required column",
        ),
        (
            "truncated.csv",
            cut.as_bytes().to_vec(),
            "truncated.csv!2:actionScore: required value is empty",
        ),
        (
            "binary.csv",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
            "not UTF-8 text",
        ),
        ("utf16.csv", utf16, "it is UTF-16: save it as UTF-8"),
        (
            "latin1.csv",
            latin1,
            "not UTF-8 text: invalid byte at offset",
        ),
        (
            "big.csv",
            big.into_bytes(),
            &format!("the file has more than {MAX_TABLE_CELLS} cells"),
        ),
        (
            "wide.csv",
            ",".repeat(MAX_TABLE_CELLS + 1).into_bytes(),
            &format!("wide.csv!1: the row has more than {MAX_TABLE_CELLS} cells"),
        ),
        (
            "types.csv",
            GOOD_CSV.replace(",3\n", ",[1e999]\n").into_bytes(),
            "types.csv!2:actionScore: `[1e999]` is not an integer in 1..=99",
        ),
        (
            "quote.csv",
            format!("{GOOD_CSV}\"unterminated,x").into_bytes(),
            "quote.csv!3",
        ),
    ]);
}

// ---- OSCAL -------------------------------------------------------------------------------

/// A catalog whose statement inserts parameters that insert each other (row 7, JSON).
fn amplifying_json() -> String {
    let insert = |p: &str, n: usize| format!("{{{{ insert: param, {p} }}}}").repeat(n);
    serde_json::json!({"catalog": {"uuid": "u", "metadata": {"title": "Amplifier"},
        "params": [
            {"id": "p1", "label": insert("p2", 1000)},
            {"id": "p2", "label": insert("p3", 1000)},
            {"id": "p3", "label": "x".repeat(1000)},
        ],
        "groups": [{"title": "G", "controls": [{"id": "c-1", "title": "C",
            "parts": [{"name": "statement", "prose": insert("p1", 1000)}]}]}]}})
    .to_string()
}

/// OSCAL JSON catalogs and profiles: empty, truncated, deep, huge (`MAX_JSON_VALUES`),
/// amplifying (row 7), wrong types, wrong encoding.
///
/// Issue 8 row 7 (JSON): a 132 KB catalog whose parameters insert each other was still
/// running after 120 s at 2 GB; now exit 65 naming `MAX_INSERT_EXPANSION_BYTES`.
#[test]
fn hostile_oscal_json_is_a_classified_error() {
    let ws = Workspace::new();
    let amplifying = amplifying_json();
    assert!(amplifying.len() < 200_000);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_catalog = format!(
        "{{\"catalog\": {{\"groups\": {}{}}}}}",
        "[{\"groups\": ".repeat(100),
        "[]}]".repeat(100)
    );
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(
        "{\"catalog\": {}}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    let truncated = &amplifying[..amplifying.len() / 3];
    ws.refuses(&[
        ("empty.json", Vec::new(), "empty.json:1:0: not JSON: EOF"),
        ("truncated.json", truncated.as_bytes().to_vec(), "not JSON: EOF while parsing"),
        ("deep.json", deep.into_bytes(), "recursion limit exceeded"),
        ("deep-catalog.json", deep_catalog.into_bytes(), "recursion limit exceeded"),
        (
            "amplifying.json",
            amplifying.clone().into_bytes(),
            &format!(
                "amplifying.json:catalog.groups[0].controls[0].parts: parameter inserts expand the statements past {MAX_INSERT_EXPANSION_BYTES} bytes"
            ),
        ),
        (
            "values.json",
            format!("{{\"catalog\": {{\"x\": [{}0]}}}}", "0,".repeat(MAX_JSON_VALUES)).into_bytes(),
            &format!("the document has more than {MAX_JSON_VALUES} values"),
        ),
        ("array.json", b"[1, 2, 3]".to_vec(), "no top-level `catalog` object"),
        (
            "types.json",
            br#"{"catalog": {"groups": 5, "controls": [{"id": 7, "title": ["x"], "parts": "p"}]}}"#.to_vec(),
            "types.json:catalog.controls[0].id: missing control id",
        ),
        ("utf16.json", utf16, "it is UTF-16"),
    ]);

    // A hostile profile is refused the same way (exit 65, store unchanged).
    let before = ws.stored();
    let catalog = r#"{"catalog": {"uuid": "u", "metadata": {"title": "Small"},
        "controls": [{"id": "c-1", "title": "C"}]}}"#;
    for (profile, expected) in [
        (
            format!("{}{}", "{\"a\":".repeat(200), "}".repeat(200)),
            "recursion limit exceeded",
        ),
        (
            "{\"profile\": {\"imports\": [{\"include-controls\"".to_owned(),
            "not JSON",
        ),
        (
            "{\"profile\": []}".to_owned(),
            "no top-level `profile` object",
        ),
    ] {
        let path = ws.dir.path().join("profile.json");
        std::fs::write(&path, &profile).expect("profile written");
        let out = ws.import(
            "small.json",
            catalog.as_bytes(),
            &["--profile", &path.to_string_lossy()],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{err}");
        assert!(err.contains(expected), "expected {expected:?} in {err}");
        assert_eq!(ws.stored(), before);
    }
}

/// A catalog inserting one long parameter thousands of times (row 7, XML).
fn amplifying_xml() -> String {
    format!(
        "<catalog xmlns=\"http://csrc.nist.gov/ns/oscal/1.0\">\n<metadata><title>A</title></metadata>\n\
         <param id=\"p\"><label>{}</label></param>\n\
         <control id=\"c-1\"><title>C</title><part name=\"statement\"><p>{}</p></part></control>\n\
         </catalog>",
        "x".repeat(400_000),
        "<insert type=\"param\" id-ref=\"p\"/>".repeat(12_000)
    )
}

/// OSCAL XML catalogs: empty, truncated, huge (`MAX_XML_NODES`), amplifying (row 7), an
/// entity bomb, wrong root, wrong encoding. (Deep nesting is row 6, below.)
///
/// Issue 8 row 7 (XML): an 860 KB catalog inserting a parameter into itself thousands of
/// times aborted allocating 6.5 GB; now exit 65 naming `MAX_INSERT_EXPANSION_BYTES`.
#[test]
fn hostile_oscal_xml_is_a_classified_error() {
    let ws = Workspace::new();
    let amplifying = amplifying_xml();
    assert!(amplifying.len() < 900_000);
    let laughs = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE catalog [<!ENTITY a \"aaaaaaaaaa\">{}]>\n<catalog><metadata><title>&j;</title></metadata></catalog>",
        (b'b'..=b'j')
            .map(|c| format!(
                "<!ENTITY {} \"{}\">",
                c as char,
                format!("&{};", (c - 1) as char).repeat(10)
            ))
            .collect::<String>()
    );
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend("<catalog/>".encode_utf16().flat_map(u16::to_le_bytes));
    let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><catalog><metadata><title>caf\xe9</title></metadata></catalog>".to_vec();
    ws.refuses(&[
        ("empty.xml", Vec::new(), "empty.xml:1:1: empty XML document"),
        (
            "truncated.xml",
            amplifying.as_bytes()[..1000].to_vec(),
            "malformed XML",
        ),
        (
            "amplifying.xml",
            amplifying.clone().into_bytes(),
            &format!("amplifying.xml:4:1: parameter inserts expand the statements past {MAX_INSERT_EXPANSION_BYTES} bytes"),
        ),
        ("laughs.xml", laughs.into_bytes(), "document type declaration (`<!DOCTYPE`) is not accepted"),
        (
            "nodes.xml",
            format!("<catalog>{}</catalog>", "<a/>".repeat(MAX_XML_NODES as usize)).into_bytes(),
            &format!("nodes.xml:document: the document has more than {MAX_XML_NODES} XML nodes"),
        ),
        ("profile.xml", b"<profile/>".to_vec(), "root element is `profile`"),
        ("utf16.xml", utf16, "it is UTF-16"),
        ("latin1.xml", latin1, "not UTF-8 text"),
    ]);
}

/// Issue 8 row 6: an OSCAL XML catalog of 300k nested elements overflowed the stack (abort).
/// The XML importer (roxmltree, parsing iteratively) refuses documents nested deeper than
/// `MAX_XML_DEPTH` before walking them: exit 65, located at the first element too deep.
#[test]
fn deep_xml_is_a_located_error_not_a_stack_overflow() {
    let ws = Workspace::new();
    let levels = 300_000;
    let deep = format!(
        "<catalog>\n{}{}</catalog>",
        "<group>".repeat(levels),
        "</group>".repeat(levels)
    );
    // The first element past the limit starts after MAX_XML_DEPTH - 1 `<group>`s on line 2.
    let column = "<group>".len() * (MAX_XML_DEPTH - 1) + 1;
    ws.refuses(&[(
        "deep.xml",
        deep.into_bytes(),
        &format!("deep.xml:2:{column}: elements nested deeper than {MAX_XML_DEPTH} levels"),
    )]);
}

// ---- configuration files -----------------------------------------------------------------

/// Configuration files (`postured check-config`): truncated, deep, wrong-typed, wrong
/// encoding, binary: exit 64 with the problem, never a crash.
#[test]
fn hostile_configuration_files_are_classified_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(
        "[[tenants]]\nid = \"x\"\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.toml",
            b"[[tenants]]\nid = \"x".to_vec(),
            "invalid TOML",
        ),
        (
            "deep-array.toml",
            format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
            "invalid TOML",
        ),
        (
            "deep-table.toml",
            format!("a = {}{}", "{b = ".repeat(100_000), "}".repeat(100_000)).into_bytes(),
            "invalid TOML",
        ),
        ("types.toml", b"[[tenants]]\nid = 5\n".to_vec(), "tenants"),
        (
            "scalar.toml",
            b"tenants = \"everyone\"\n".to_vec(),
            "tenants",
        ),
        ("utf16.toml", utf16, "UTF-8"),
        (
            "binary.toml",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
            "UTF-8",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("written");
        let out = postured()
            .arg("check-config")
            .arg(&path)
            .output()
            .expect("postured runs");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{name}: {err}");
        assert!(
            err.contains(expected),
            "{name}: expected {expected:?} in\n{err}"
        );
    }
}

// ---- the store ---------------------------------------------------------------------------

/// Issue 8 row 14: a stored template that no longer parses made the daemon refuse to start,
/// although the documentation says it is skipped. Now the daemon starts, warns, keeps the
/// other templates, skips an assessment of the corrupt one, and exports
/// `postured_templates_skipped{reason="corrupt"} 1`.
#[tokio::test]
async fn a_corrupt_stored_template_is_skipped_and_counted_not_fatal() {
    let ws = Workspace::new();
    let second = GOOD_CSV.replace("acme-policy", "acme-second");
    assert!(
        ws.import("second.csv", second.as_bytes(), &[])
            .status
            .success()
    );
    let url = format!("sqlite://{}", ws.db.display());
    {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("pool");
        sqlx::query("UPDATE templates SET body = '{\"id\": \"acme-second\", \"controls\": 7}' WHERE id = 'acme-second'")
            .execute(&pool)
            .await
            .expect("row corrupted");
        pool.close().await;
    }
    // An assessment of the corrupt template does not stop the start either: it is skipped.
    let mut config = std::fs::read_to_string(&ws.config).expect("config");
    config.push_str(
        "\n[[assessments]]\nid = \"contoso-demo-acme-second\"\ntenant = \"contoso-demo\"\ntemplate = \"acme-second\"\n",
    );
    std::fs::write(&ws.config, config).expect("config written");
    let cfg = postured::config::Config::load(&ws.config).expect("config");
    let app = postured::assembly::build_app(cfg)
        .await
        .expect("the daemon starts despite the corrupt row");
    let tenant = app.tenant("contoso-demo").expect("tenant").clone();
    app.poll(&tenant, 0).await;
    let reports = app.assessment_reports().await;
    assert!(!reports.is_empty());
    assert!(
        reports.iter().all(|r| r.id != "contoso-demo-acme-second"),
        "the assessment of the corrupt template is skipped"
    );
    let registry = app.model.registry();
    assert!(registry.get("acme-policy").is_some());
    assert!(registry.get("acme-second").is_none());
    let skipped = app.model.skipped_templates();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].id, "acme-second");
    let families = app.metrics.registry().gather();
    let family = families
        .iter()
        .find(|f| f.name() == "postured_templates_skipped")
        .expect("exported");
    let corrupt = family
        .get_metric()
        .iter()
        .find(|m| m.get_label()[0].value() == "corrupt")
        .expect("corrupt series");
    assert_eq!(corrupt.get_gauge().get_value(), 1.0);

    // `template list` shows the good one and still works.
    let list = postured()
        .args(["template", "list", "--config"])
        .arg(&ws.config)
        .output()
        .expect("postured runs");
    assert!(list.status.success(), "{}", text(&list.stderr));
    let shown = text(&list.stdout);
    assert!(
        shown.contains("acme-policy") && !shown.contains("acme-second"),
        "{shown}"
    );
}
